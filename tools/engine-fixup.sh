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
# 3. JS_FreeValueRT's two early returns (a value without a reference count; a count that stays
#    above zero) run inline at every call, before the function moves the shadow stack pointer.
#    The engine calls it for nearly every value it drops, most of them numbers.
# 4. The interpreter loop (JS_CallInternal) tests, after every bytecode instruction, whether the
#    runtime's dump flags ask for a trace of each step (JS_DUMP_BYTECODE_STEP: bit 7 of the byte
#    at offset 753 of JSRuntime, which only JS_SetDumpFlags writes). trail never sets dump flags,
#    so the test reads 0 there. The loop is found as the one function with over 100 such tests.
# 5. The same loop finds each instruction's handler through a table in the module's read-only
#    data (opcode -> case number) and then a switch on the case number. The rewrite switches on
#    the opcode itself, with the table's contents (read from the module's data here) in its
#    cases: one dependent load and a subtraction fewer per instruction (tools/engine-dispatch.awk).
#
# When the output does not look as expected (another wasm2c version, another engine build), the
# script fails and the build with it: a silently slower engine is a bug to look at. With
# ENGINE_FIXUP=plain (`make ENGINE_FIXUP=plain`) OUT gets IN with only the barrier removed
# instead, and a note says the engine is slower than it could be. The generated code must not
# then meet an instance whose memory is elsewhere: jsg.c checks the placement before any guest
# code runs. After a rewrite the script checks that every part of it is in OUT (its markers), so
# that a part that quietly matched nothing fails too.
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

# 3: JS_FreeValueRT, only when its head and tail are the code the inline copy repeats
free_def='static void w2c_JS_FreeValueRT(Z_quickjs_instance_t* instance, u32 w2c_p0, u64 w2c_p1) {'
free_head=$(cat <<'EOF'
  u32 w2c_l2 = 0, w2c_l3 = 0, w2c_l4 = 0, w2c_l5 = 0;
  u64 w2c_l6 = 0;
  FUNC_PROLOGUE;
  u32 w2c_i0, w2c_i1, w2c_i2, w2c_i3;
  u64 w2c_j0, w2c_j1, w2c_j2;
  w2c_i0 = instance->w2c___stack_pointer;
  w2c_i1 = 16u;
  w2c_i0 -= w2c_i1;
  w2c_l4 = w2c_i0;
  instance->w2c___stack_pointer = w2c_i0;
  w2c_j0 = w2c_p1;
  w2c_j1 = 18446744035054845952ull;
  w2c_i0 = w2c_j0 < w2c_j1;
  if (w2c_i0) {goto w2c_B0;}
  w2c_j0 = w2c_p1;
  w2c_i0 = (u32)(w2c_j0);
  w2c_l2 = w2c_i0;
  w2c_i1 = 4u;
  w2c_i0 -= w2c_i1;
  w2c_l3 = w2c_i0;
  w2c_i1 = w2c_l3;
  w2c_i1 = i32_load(TRAIL_MEM, (u64)(w2c_i1));
  w2c_l3 = w2c_i1;
  w2c_i2 = 1u;
  w2c_i1 -= w2c_i2;
  i32_store(TRAIL_MEM, (u64)(w2c_i0), w2c_i1);
  w2c_i0 = w2c_l3;
  w2c_i1 = 1u;
  w2c_i0 = (u32)((s32)w2c_i0 > (s32)w2c_i1);
  if (w2c_i0) {goto w2c_B0;}
EOF
)
free_tail=$(cat <<'EOF'
  w2c_B0:;
  w2c_i0 = w2c_l4;
  w2c_i1 = 16u;
  w2c_i0 += w2c_i1;
  instance->w2c___stack_pointer = w2c_i0;
  FUNC_EPILOGUE;
}
EOF
)
free_inline=$(cat <<'EOF'
static void w2c_JS_FreeValueRT_rest(Z_quickjs_instance_t*, u32, u64);
/* trail (tools/engine-fixup.sh): the early returns of JS_FreeValueRT below, inline */
static inline __attribute__((always_inline))
void w2c_JS_FreeValueRT(Z_quickjs_instance_t* instance, u32 w2c_p0, u64 w2c_p1) {
  if (w2c_p1 < 18446744035054845952ull) return;
  u32 count = i32_load(TRAIL_MEM, (u64)((u32)w2c_p1 - 4u));
  if ((s32)count > 1) {
    i32_store(TRAIL_MEM, (u64)((u32)w2c_p1 - 4u), count - 1u);
    return;
  }
  w2c_JS_FreeValueRT_rest(instance, w2c_p0, w2c_p1);
}
EOF
)
start=$(grep -nxF "$free_def" "$tmp" | head -1 | cut -d: -f1)
end=$(awk -v s="${start:-0}" 'NR > s && /^}$/ { print NR; exit }' "$tmp")
if [ -n "$start" ] && [ -n "$end" ] && [ "$(grep -cxF "$free_def" "$tmp")" = 1 ] &&
   grep -qxF 'static void w2c_JS_FreeValueRT(Z_quickjs_instance_t*, u32, u64);' "$tmp" &&
   [ "$(sed -n "$((start + 1)),$((start + 30))p" "$tmp")" = "$free_head" ] &&
   [ "$(sed -n "$((end - 6)),${end}p" "$tmp")" = "$free_tail" ]; then
  awk -v def="$free_def" -v inl="$free_inline" '
    $0 == "static void w2c_JS_FreeValueRT(Z_quickjs_instance_t*, u32, u64);" { print inl; next }
    $0 == def { sub(/w2c_JS_FreeValueRT\(/, "w2c_JS_FreeValueRT_rest("); print; next }
    { print }' "$tmp" > "$tmp.2"
  mv "$tmp.2" "$tmp"
else
  ok=0
fi

# 4: the interpreter's per-instruction test of the step-dump flag
step_test='^ *w2c_i([0-9]+) = i32_load8_u\(TRAIL_MEM, \(u64\)\(w2c_i[0-9]+\) \+ 753u\);$'
awk -v re="$step_test" '
  function flush() { if (name != "" && n > best) { best = n; bestname = name } n = 0 }
  /^static .*\(Z_quickjs_instance_t\* instance.*\) \{$/ { flush(); name = $0 }
  $0 ~ re { n++ }
  END { flush(); if (best > 100) print bestname }' "$tmp" > "$tmp.fn"
if [ -s "$tmp.fn" ]; then
  # the load becomes 0 where the next two lines mask it with 128 (and nowhere else)
  awk -v re="$step_test" -v fn="$(cat "$tmp.fn")" '
    { line[NR] = $0 }
    END {
      for (i = 1; i <= NR; i++) {
        if (line[i] == fn) inside = 1
        else if (line[i] ~ /^static .*\(Z_quickjs_instance_t\* instance.*\) \{$/) inside = 0
        if (inside && line[i] ~ re) {
          v = line[i]; sub(/^ *w2c_i/, "", v); sub(/ .*/, "", v)
          m = line[i + 1]; sub(/^ *w2c_i/, "", m); sub(/ .*/, "", m)
          if (line[i + 1] ~ ("^ *w2c_i" m " = 128u;$") &&
              line[i + 2] ~ ("^ *w2c_i" v " &= w2c_i" m ";$")) {
            sub(/i32_load8_u\(.*\);$/, "0u;", line[i]); n++
          }
        }
        print line[i]
      }
      print n > "/dev/stderr"
    }' "$tmp" > "$tmp.2" 2> "$tmp.n"
  if [ "$(cat "$tmp.n")" -gt 100 ]; then mv "$tmp.2" "$tmp"; else ok=0; fi
  rm -f "$tmp.2" "$tmp.n"
  # 5: its dispatch
  if awk -v fn="$(cat "$tmp.fn")" -f "$(dirname "$0")/engine-dispatch.awk" "$tmp" "$tmp" \
       > "$tmp.2" 2> /dev/null; then
    mv "$tmp.2" "$tmp"
  else
    ok=0
  fi
  rm -f "$tmp.2"
else
  ok=0
fi
rm -f "$tmp.fn"

# every part left its mark: TRAIL_MEM addressing, the inline JS_FreeValueRT and the switch on the
# opcode (part 4 counted its own replacements above)
if [ $ok = 1 ]; then
  for mark in '^#define TRAIL_MEM ' \
              'trail \(tools/engine-fixup.sh\): the early returns of JS_FreeValueRT' \
              'trail \(tools/engine-fixup.sh\): each opcode.s handler'; do
    grep -qE "$mark" "$tmp" || { echo "engine-fixup: the rewrite left no '$mark'" >&2; ok=0; }
  done
fi

if [ $ok = 1 ]; then
  mv "$tmp" "$out"
elif [ "${ENGINE_FIXUP:-}" != plain ]; then
  rm -f "$tmp"
  echo "engine-fixup: $in is not the wasm2c output this script knows (wabt 1.0.32 on" \
       "quickjs-wasi 3.6.2), so the engine's rewrite for speed would not apply; see" \
       "docs/engine.md. make ENGINE_FIXUP=plain builds the engine without it (slower)." >&2
  exit 1
else
  # IN may be OUT: rewrite the untouched input, not the half-rewritten copy
  sed -E 's/^#define wasm_asm __asm__$/#define wasm_asm(...)/' "$in" > "$tmp"
  mv "$tmp" "$out"
  echo "note: $in is not the wasm2c output tools/engine-fixup.sh knows; the engine is built" \
       "without its rewrite (slower)" >&2
fi
