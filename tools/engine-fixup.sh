#!/usr/bin/env bash
# tools/engine-fixup.sh IN OUT: rewrites the engine's wasm2c output (wabt 1.0.32) for speed.
# Both parts hold only under trail's runtime (src/wasm/runtime/wrt.c); docs/engine.md says why.
#
# 1. Loads lose wasm2c's barrier (an empty asm statement that forces every loaded value into a
#    register, so that an unused load still traps).
# 2. Loads and stores address memory at instance + WRT_INSTANCE_SPAN, where trail puts every
#    engine instance's memory (wrt_instance_new). wasm2c's own code reads the memory's base from
#    the instance at each access, and as far as the C compiler knows a store to linear memory
#    may change that base, so it reads it again after every store.
#
# When the output does not look as expected (another wasm2c version), OUT gets IN with only the
# barrier removed, and a note says the engine is slower than it could be. The generated code
# must not then meet an instance whose memory is elsewhere: jsg.c checks the placement before
# any guest code runs.
set -euo pipefail
in=$1 out=$2
tmp=$out.tmp

mem_at='#define TRAIL_MEM ((u8*)instance + WRT_INSTANCE_SPAN)'
sed -E \
  -e 's/^#define wasm_asm __asm__$/#define wasm_asm(...)/' \
  -e "s|^#include \"quickjs.h\"\$|&\\n#include \"wasm/runtime/wrt.h\"\\n$mem_at|" \
  -e 's/^(  static inline (t3|void) name\()wasm_rt_memory_t\* mem(, u64 addr)/\1u8* base\3/' \
  -e 's/MEMCHECK\(mem, addr, t1\);/(void)0;/' \
  -e 's/&mem->data\[addr\]/(base + addr)/' \
  -e 's/\b([fi](32|64)_(load|store)[0-9a-z_]*)\(&instance->w2c_memory, /\1(TRAIL_MEM, /g' \
  "$in" > "$tmp"

ok=1
grep -q '^#define wasm_asm(\.\.\.)$' "$tmp" || ok=0
grep -q '^#define TRAIL_MEM ' "$tmp" || ok=0
[ "$(grep -c '^  static inline t3 name(u8\* base, u64 addr) {' "$tmp")" -ge 1 ] || ok=0
[ "$(grep -c '^  static inline void name(u8\* base, u64 addr, t2 value) {' "$tmp")" -ge 1 ] || ok=0
grep -q 'wasm_rt_memcpy(&result, (base + addr), sizeof(t1));' "$tmp" || ok=0
grep -q 'wasm_rt_memcpy((base + addr), &wrapped, sizeof(t1));' "$tmp" || ok=0
# one memory, and no access left that reads its base from the instance
[ "$(grep -c '^  wasm_rt_allocate_memory(' "$tmp")" = 1 ] || ok=0
grep -qE '\b[fi](32|64)_(load|store)[0-9a-z_]*\(&instance->' "$tmp" && ok=0

if [ $ok = 1 ]; then
  mv "$tmp" "$out"
else
  # IN may be OUT: rewrite the untouched input, not the half-rewritten copy
  sed -E 's/^#define wasm_asm __asm__$/#define wasm_asm(...)/' "$in" > "$tmp"
  mv "$tmp" "$out"
  echo "note: $in is not the wasm2c output tools/engine-fixup.sh knows; the engine is built" \
       "without its rewrite (slower)" >&2
fi
