import { Nope } from "trailbase-wasm/http"; // error
import { Missing } from "trailbase-wasm/nope"; // error
export { Nope, Missing };
