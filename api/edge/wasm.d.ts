// wrangler's default module rules make a `.wasm` import a precompiled WebAssembly.Module.
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
