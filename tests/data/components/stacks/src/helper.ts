// A second file: frames in it name src/helper.ts.
export function explode(what: string): never {
  throw new Error(`${what} exploded`);
}
