# tools/engine-dispatch.awk: step 5 of tools/engine-fixup.sh, the interpreter's dispatch.
#   awk -v fn="HEAD" -f tools/engine-dispatch.awk FILE FILE > OUT
# HEAD is the first line of the interpreter loop's function. In it, wasm2c's code finds each
# instruction's handler in two steps:
#     w2c_i1 = i32_load8_u(TRAIL_MEM, (u64)(w2c_i1));          the opcode
#     w2c_l12 = w2c_i1;
#     w2c_i2 = 2u; w2c_i1 <<= (w2c_i2 & 31);                    (one line each)
#     w2c_i1 = i32_load(TRAIL_MEM, (u64)(w2c_i1) + 1090640u);   a table in the module's data
#     w2c_i2 = 2u; w2c_i1 -= w2c_i2;
#     switch (w2c_i1) { case 0: goto w2c_B277; ... default: goto w2c_B278; }
# OUT switches on the opcode, each of its 256 cases going where the table sends it. The table is
# compiler-made read-only data: nothing in the engine writes it. FILE is read twice: the first
# pass finds the dispatch (over 200 cases, exactly once in HEAD's function) and the bytes of the
# data segment that holds the table, the second writes FILE with the dispatch replaced. Exits 1,
# writing nothing useful, when the code is not as described.
function hex(s,   i, n, c) {
  n = 0; s = tolower(s); sub(/^0x/, "", s)
  for (i = 1; i <= length(s); i++) {
    c = index("0123456789abcdef", substr(s, i, 1)) - 1
    n = n * 16 + c
  }
  return n
}
BEGIN { fnhead = "^static .*\\(Z_quickjs_instance_t\\* instance.*\\) \\{$" }
NR == FNR {
  if ($0 == fn) inside = 1
  else if ($0 ~ fnhead) inside = 0
  line[NR] = $0
  # where each data segment goes: LOAD_DATA(instance->w2c_memory, ADDRu, NAME, SIZE);
  if ($0 ~ /^  LOAD_DATA\(instance->w2c_memory, [0-9]+u, [a-z0-9_]+, [0-9]+\);$/) {
    split($0, f, /[(), ]+/); seg_at[f[5]] = f[4] + 0; seg_n[f[5]] = f[6] + 0
  }
  if ($0 ~ /^static const u8 data_segment_data_w2c_d[0-9]+\[\] = \{$/) {
    cur = $4; sub(/\[\]$/, "", cur); nb[cur] = 0; next
  }
  if (cur != "") {
    if ($0 == "};") { cur = ""; next }
    n = split($0, b, /[, ]+/)
    for (i = 1; i <= n; i++) if (b[i] ~ /^0x/) byte[cur, nb[cur]++] = hex(b[i])
  }
  # the dispatch: opcode byte, times 4, a table load, minus K, switch on the result
  if (inside && $0 ~ /^ *switch \(w2c_i[0-9]+\) \{$/ && NR > 7) {
    v = $0; sub(/^ *switch \(/, "", v); sub(/\).*/, "", v)
    if (line[NR - 7] ~ ("^ *" v " = i32_load8_u\\(TRAIL_MEM, \\(u64\\)\\(" v "\\)\\);$") &&
        line[NR - 6] ~ ("^ *w2c_l[0-9]+ = " v ";$") &&
        line[NR - 5] ~ ("^ *w2c_i[0-9]+ = 2u;$") &&
        line[NR - 4] ~ ("^ *" v " <<= \\(w2c_i[0-9]+ & 31\\);$") &&
        line[NR - 3] ~ ("^ *" v " = i32_load\\(TRAIL_MEM, \\(u64\\)\\(" v "\\) \\+ [0-9]+u\\);$") &&
        line[NR - 2] ~ ("^ *w2c_i[0-9]+ = [0-9]+u;$") &&
        line[NR - 1] ~ ("^ *" v " -= w2c_i[0-9]+;$")) {
      t = line[NR - 3]; sub(/.*\+ /, "", t); sub(/u\);$/, "", t)
      k = line[NR - 2]; sub(/^ *w2c_i[0-9]+ = /, "", k); sub(/u;$/, "", k)
      cand_at = NR; cand_v = v; cand_t = t + 0; cand_k = k + 0
      ncase = 0; deflt = ""; incase = 1; next
    }
  }
  if (incase) {
    if ($0 ~ /^ *case [0-9]+: goto w2c_[A-Za-z0-9_]+;$/) {
      c = $0; sub(/^ *case /, "", c); sub(/:.*/, "", c)
      if (c + 0 != ncase) { incase = 0; cand_at = 0; next }
      g = $0; sub(/.*goto /, "", g); sub(/;$/, "", g); target[ncase++] = g; next
    }
    if ($0 ~ /^ *default: goto w2c_[A-Za-z0-9_]+;$/) {
      g = $0; sub(/.*goto /, "", g); sub(/;$/, "", g); deflt = g; next
    }
    incase = 0
    if ($0 ~ /^ *\}$/ && ncase > 200 && deflt != "") {
      found++; d_at = cand_at; d_end = NR; d_v = cand_v; d_t = cand_t; d_k = cand_k
      d_n = ncase; d_deflt = deflt
      for (i = 0; i < ncase; i++) d_target[i] = target[i]
    }
  }
  next
}
FNR == 1 {
  # the segment that holds the 256 four-byte entries
  if (found == 1) for (s in seg_at)
    if (seg_at[s] <= d_t && d_t + 1024 <= seg_at[s] + seg_n[s] && nb[s] == seg_n[s]) tab = s
  if (tab == "") { print "engine-dispatch.awk: no dispatch as expected" > "/dev/stderr"; exit 1 }
  o = d_t - seg_at[tab]
  for (op = 0; op < 256; op++) {
    e = 0
    for (i = 3; i >= 0; i--) e = e * 256 + byte[tab, o + 4 * op + i]
    e -= d_k                                  # little-endian u32, minus the code's constant
    lab[op] = (e >= 0 && e < d_n) ? d_target[e] : d_deflt
  }
}
FNR >= d_at - 5 && FNR <= d_end {
  if (FNR == d_at - 5) {
    ind = $0; sub(/[^ ].*/, "", ind)
    print ind "/* trail (tools/engine-fixup.sh): each opcode's handler as the table at " d_t
    print ind "   in the module's read-only data has it, without reading the table */"
    print ind "switch ((u8)" d_v ") {"
    for (op = 0; op < 256; op++) print ind "  case " op ": goto " lab[op] ";"
    print ind "}"
  }
  next
}
{ print }
