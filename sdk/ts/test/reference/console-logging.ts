console.log("Info message");
console.warn("Warning message");
console.error("Error message");
