// guest/prelude.js: the standard globals trail gives every isolate, written over a few host
// primitives (__trailhost). Evaluated once per isolate, before the component's own code; its
// completion value is the object of hooks the host calls back into (timers).
//
// DESIGN: everything a handler expects from a web-style runtime that QuickJS-NG lacks: console,
// timers, TextEncoder/TextDecoder, URL/URLSearchParams, structuredClone, crypto, fetch with
// Headers/Request/Response. UTF-8 conversion, randomness, time and I/O stay in the host; the
// rest is plain JS. Nothing here keeps per-request state except timers, which outlive requests.
(function (host) {
  "use strict";
  const g = globalThis;
  const define = (name, value) =>
    Object.defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });

  // ---- console ----
  function inspect(v, depth, seen) {
    if (typeof v === "string") return depth === 0 ? v : JSON.stringify(v);
    if (typeof v === "bigint") return v + "n";
    if (typeof v === "symbol" || typeof v === "number" || typeof v === "boolean" || v == null)
      return String(v);
    if (typeof v === "function") return "[Function: " + (v.name || "anonymous") + "]";
    if (v instanceof Error) return v.stack ? v.name + ": " + v.message + "\n" + v.stack.trimEnd() : String(v);
    if (seen.includes(v)) return "[Circular]";
    if (depth > 4) return Array.isArray(v) ? "[Array]" : "[Object]";
    seen = seen.concat([v]);
    const d = depth + 1;
    if (Array.isArray(v)) return "[ " + v.map((x) => inspect(x, d, seen)).join(", ") + " ]";
    if (v instanceof Uint8Array) return "Uint8Array(" + v.length + ") [ " + Array.from(v.subarray(0, 32)).join(", ") + (v.length > 32 ? ", ..." : "") + " ]";
    if (v instanceof Date) return isNaN(v) ? "Invalid Date" : v.toISOString();
    if (v instanceof Map) return "Map(" + v.size + ") { " + Array.from(v, ([k, x]) => inspect(k, d, seen) + " => " + inspect(x, d, seen)).join(", ") + " }";
    if (v instanceof Set) return "Set(" + v.size + ") { " + Array.from(v, (x) => inspect(x, d, seen)).join(", ") + " }";
    if (typeof v.toJSON === "function" && !(v instanceof Date)) return inspect(v.toJSON(), depth, seen);
    const keys = Object.keys(v);
    if (keys.length === 0) return "{}";
    return "{ " + keys.map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)) + ": " + inspect(v[k], d, seen)).join(", ") + " }";
  }
  function format(args) {
    let out = "";
    let i = 0;
    if (typeof args[0] === "string" && args[0].includes("%") && args.length > 1) {
      out = args[0].replace(/%[sdifoOjc%]/g, (m) => {
        if (m === "%%") return "%";
        if (i + 1 >= args.length) return m;
        const a = args[++i];
        switch (m) {
          case "%s": return typeof a === "string" ? a : inspect(a, 1, []);
          case "%d": case "%i": return typeof a === "bigint" ? a + "n" : String(m === "%i" ? Math.trunc(Number(a)) : Number(a));
          case "%f": return String(Number(a));
          case "%j": try { return JSON.stringify(a); } catch (e) { return "[Circular]"; }
          case "%c": return "";
          default: return inspect(a, 1, []);
        }
      });
      i++;
    }
    for (; i < args.length; i++) out += (out === "" && i === 0 ? "" : " ") + inspect(args[i], 0, []);
    return out;
  }
  const counts = new Map();
  const timersByLabel = new Map();
  define("console", {
    log: (...a) => host.log(1, format(a)),
    info: (...a) => host.log(1, format(a)),
    warn: (...a) => host.log(2, format(a)),
    error: (...a) => host.log(3, format(a)),
    debug: (...a) => host.log(0, format(a)),
    trace: (...a) => host.log(0, format(a) + "\n" + (new Error().stack || "").trimEnd()),
    assert: (ok, ...a) => { if (!ok) host.log(3, "Assertion failed" + (a.length ? ": " + format(a) : "")); },
    count: (label = "default") => { const n = (counts.get(label) || 0) + 1; counts.set(label, n); host.log(1, label + ": " + n); },
    countReset: (label = "default") => counts.delete(label),
    time: (label = "default") => timersByLabel.set(label, performance.now()),
    timeEnd: (label = "default") => {
      const t = timersByLabel.get(label);
      if (t !== undefined) { timersByLabel.delete(label); host.log(1, label + ": " + (performance.now() - t).toFixed(3) + "ms"); }
    },
    timeLog: (label = "default", ...a) => {
      const t = timersByLabel.get(label);
      if (t !== undefined) host.log(1, label + ": " + (performance.now() - t).toFixed(3) + "ms" + (a.length ? " " + format(a) : ""));
    },
    table: (...a) => host.log(1, format(a)),
    dir: (v) => host.log(1, inspect(v, 1, [])),
    group: () => {}, groupEnd: () => {},
  });

  // ---- timers: the host keeps the clock; callbacks stay here ----
  const timers = new Map();
  let nextTimer = 1;
  function addTimer(cb, ms, args, repeat) {
    if (typeof cb !== "function") throw new TypeError("The callback must be a function");
    ms = Number(ms);
    ms = ms > 0 && ms < 2147483647 ? Math.floor(ms) : 0;
    const id = nextTimer++;
    timers.set(id, { cb, args, repeat });
    host.timerStart(id, ms, repeat);
    return id;
  }
  function clearTimer(id) {
    id = Number(id);
    if (timers.delete(id)) host.timerCancel(id);
  }
  define("setTimeout", (cb, ms, ...args) => addTimer(cb, ms, args, false));
  define("setInterval", (cb, ms, ...args) => addTimer(cb, ms, args, true));
  define("clearTimeout", clearTimer);
  define("clearInterval", clearTimer);
  define("setImmediate", (cb, ...args) => addTimer(cb, 0, args, false));
  define("clearImmediate", clearTimer);
  function fireTimer(id) {
    const t = timers.get(id);
    if (t === undefined) return;
    if (!t.repeat) timers.delete(id);
    try {
      t.cb.apply(undefined, t.args);
    } catch (e) {
      host.log(3, "Uncaught exception in a timer callback: " + inspect(e, 0, []));
    }
  }

  // ---- TextEncoder / TextDecoder ----
  function toBytes(src, what) {
    if (src instanceof Uint8Array) return src;
    if (src instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && src instanceof SharedArrayBuffer)) return new Uint8Array(src);
    if (ArrayBuffer.isView(src)) return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    throw new TypeError(what + ": expected an ArrayBuffer or an ArrayBufferView");
  }
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(s = "") { return host.encodeUtf8(String(s)); }
    encodeInto(s, dest) {
      s = String(s);
      const bytes = host.encodeUtf8(s);
      if (bytes.length <= dest.length) {
        dest.set(bytes);
        return { read: s.length, written: bytes.length };
      }
      // Copy whole characters only: cut before a UTF-8 lead byte.
      let n = dest.length;
      while (n > 0 && (bytes[n] & 0xc0) === 0x80) n--;
      dest.set(bytes.subarray(0, n));
      const read = host.decodeUtf8(bytes.subarray(0, n), false).length;
      return { read, written: n };
    }
  }
  class TextDecoder {
    #fatal; #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      const l = String(label).trim().toLowerCase();
      if (l !== "utf-8" && l !== "utf8" && l !== "unicode-1-1-utf-8")
        throw new RangeError("The encoding '" + label + "' is not supported (only utf-8)");
      this.#fatal = !!options.fatal;
      this.#ignoreBOM = !!options.ignoreBOM;
    }
    get encoding() { return "utf-8"; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input) {
      if (input === undefined) return "";
      let bytes = toBytes(input, "TextDecoder.decode");
      if (!this.#ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
        bytes = bytes.subarray(3);
      const s = host.decodeUtf8(bytes, this.#fatal);
      if (s === null) throw new TypeError("The encoded data was not valid UTF-8");
      return s;
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);

  // ---- URLSearchParams / URL ----
  const formEncode = (s) => encodeURIComponent(s).replace(/%20/g, "+").replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const formDecode = (s) => { try { return decodeURIComponent(s.replace(/\+/g, " ")); } catch (e) { return s.replace(/\+/g, " "); } };
  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = "") {
      if (typeof init === "object" && init !== null) {
        if (init instanceof URLSearchParams) this.#list = init.#list.map((p) => p.slice());
        else if (typeof init[Symbol.iterator] === "function")
          for (const pair of init) {
            const p = Array.from(pair);
            if (p.length !== 2) throw new TypeError("Each query pair must be a [name, value] pair");
            this.#list.push([String(p[0]), String(p[1])]);
          }
        else for (const k of Object.keys(init)) this.#list.push([k, String(init[k])]);
      } else this.#parse(String(init));
    }
    #parse(s) {
      if (s.startsWith("?")) s = s.slice(1);
      this.#list = [];
      for (const part of s.split("&")) {
        if (part === "") continue;
        const eq = part.indexOf("=");
        this.#list.push(eq < 0 ? [formDecode(part), ""] : [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))]);
      }
    }
    static _attach(params, url, query) { params.#url = url; params.#parse(query); }
    static _reparse(params, query) { params.#parse(query); }
    #update() { if (this.#url) this.#url._setQuery(this.toString()); }
    get size() { return this.#list.length; }
    append(k, v) { this.#list.push([String(k), String(v)]); this.#update(); }
    delete(k, v) {
      k = String(k);
      this.#list = this.#list.filter((p) => !(p[0] === k && (v === undefined || p[1] === String(v))));
      this.#update();
    }
    get(k) { k = String(k); const p = this.#list.find((x) => x[0] === k); return p ? p[1] : null; }
    getAll(k) { k = String(k); return this.#list.filter((x) => x[0] === k).map((x) => x[1]); }
    has(k, v) { k = String(k); return this.#list.some((x) => x[0] === k && (v === undefined || x[1] === String(v))); }
    set(k, v) {
      k = String(k); v = String(v);
      const i = this.#list.findIndex((x) => x[0] === k);
      if (i < 0) this.#list.push([k, v]);
      else { this.#list[i][1] = v; this.#list = this.#list.filter((x, j) => j <= i || x[0] !== k); }
      this.#update();
    }
    sort() { this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this.#update(); }
    forEach(fn, thisArg) { for (const [k, v] of this.#list) fn.call(thisArg, v, k, this); }
    *keys() { for (const p of this.#list) yield p[0]; }
    *values() { for (const p of this.#list) yield p[1]; }
    *entries() { for (const p of this.#list) yield [p[0], p[1]]; }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this.#list.map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&"); }
  }
  define("URLSearchParams", URLSearchParams);

  const SPECIAL = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
  const pctEncode = (s, re) => s.replace(re, (c) => Array.from(host.encodeUtf8(c), (b) => "%" + b.toString(16).toUpperCase().padStart(2, "0")).join(""));
  const PATH_ENC = /[\u0000-\u0020"<>`{}\u007f-\uffff]|[\ud800-\udbff][\udc00-\udfff]/g;
  const QUERY_ENC = /[\u0000-\u0020"<>#\u007f-\uffff]|[\ud800-\udbff][\udc00-\udfff]/g;
  const FRAG_ENC = /[\u0000-\u0020"<>`\u007f-\uffff]|[\ud800-\udbff][\udc00-\udfff]/g;
  const USER_ENC = /[\u0000-\u0020"<>`{}\/:;=@\[\\\]^|\u007f-\uffff]|[\ud800-\udbff][\udc00-\udfff]/g;
  function normalizePath(path, special) {
    const out = [];
    const segs = path.split("/");
    segs.shift();
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      const low = s.toLowerCase();
      const last = i === segs.length - 1;
      if (s === ".." || low === ".%2e" || low === "%2e." || low === "%2e%2e") {
        out.pop();
        if (last) out.push("");
      } else if (s === "." || low === "%2e") {
        if (last) out.push("");
      } else out.push(s);
    }
    return special || path.startsWith("/") ? "/" + out.join("/") : out.join("/");
  }
  function parseHost(h, special) {
    if (h.startsWith("[")) {
      if (!h.endsWith("]") || !/^\[[0-9a-fA-F:.]+\]$/.test(h)) throw new TypeError("Invalid URL: bad IPv6 host");
      return h.toLowerCase();
    }
    if (!special) return pctEncode(h, /[\u0000-\u001f\u007f-\uffff]/g);
    let d;
    try { d = decodeURIComponent(h); } catch (e) { throw new TypeError("Invalid URL: bad host"); }
    d = d.toLowerCase();
    if (d === "" || /[\u0000-\u0020#%\/:<>?@\[\\\]^|]/.test(d)) throw new TypeError("Invalid URL: bad host '" + h + "'");
    if (/[^\u0000-\u007f]/.test(d)) throw new TypeError("Invalid URL: internationalised host names are not supported");
    return d;
  }
  function parseURL(input, base) {
    let s = String(input).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "").replace(/[\t\n\r]/g, "");
    const r = { protocol: "", username: "", password: "", hostname: "", port: "", pathname: "", search: "", hash: "", opaque: false };
    const m = /^([A-Za-z][A-Za-z0-9+.\-]*):/.exec(s);
    let rest;
    if (m) {
      r.protocol = m[1].toLowerCase() + ":";
      rest = s.slice(m[0].length);
      if (base && !(r.protocol in SPECIAL) === false && base.protocol === r.protocol && !/^[\/\\]/.test(rest)) {
        return parseURL(rest, base); // "http:foo" relative to an http base
      }
    } else {
      if (!base) throw new TypeError("Invalid URL: '" + input + "'");
      r.protocol = base.protocol;
      rest = s;
      const special0 = r.protocol in SPECIAL;
      if (!(special0 ? /^[\/\\]{2}/ : /^\/\//).test(rest)) {
        if (base.opaque) {
          if (!rest.startsWith("#")) throw new TypeError("Invalid URL: '" + input + "'");
          Object.assign(r, base, { hash: "" });
        } else {
          r.username = base.username; r.password = base.password; r.hostname = base.hostname; r.port = base.port;
          let hashAt = rest.indexOf("#");
          let frag = hashAt >= 0 ? rest.slice(hashAt) : "";
          if (hashAt >= 0) rest = rest.slice(0, hashAt);
          const qAt = rest.indexOf("?");
          const query = qAt >= 0 ? rest.slice(qAt) : null;
          let path = qAt >= 0 ? rest.slice(0, qAt) : rest;
          if (special0) path = path.replace(/\\/g, "/");
          if (path === "") {
            r.pathname = base.pathname;
            r.search = query !== null ? query : base.search;
          } else {
            if (!path.startsWith("/")) path = base.pathname.slice(0, base.pathname.lastIndexOf("/") + 1) + path;
            r.pathname = normalizePath(pctEncode(path, PATH_ENC), special0);
            r.search = query !== null ? query : "";
          }
          if (r.search && r.search !== base.search) r.search = pctEncode(r.search, QUERY_ENC);
          if (r.search === "?") r.search = "";
          r.hash = frag === "#" ? "" : pctEncode(frag, FRAG_ENC);
        }
        return r;
      }
    }
    const special = r.protocol in SPECIAL;
    let hashAt = rest.indexOf("#");
    if (hashAt >= 0) { r.hash = rest.slice(hashAt); rest = rest.slice(0, hashAt); if (r.hash === "#") r.hash = ""; else r.hash = pctEncode(r.hash, FRAG_ENC); }
    const qAt = rest.indexOf("?");
    if (qAt >= 0) { r.search = rest.slice(qAt); rest = rest.slice(0, qAt); if (r.search === "?") r.search = ""; else r.search = pctEncode(r.search, QUERY_ENC); }
    if (special) rest = rest.replace(/\\/g, "/");
    if (special || rest.startsWith("//")) {
      rest = rest.replace(special ? /^\/*/ : /^\/\//, "");
      const slash = rest.indexOf("/");
      let auth = slash >= 0 ? rest.slice(0, slash) : rest;
      let path = slash >= 0 ? rest.slice(slash) : "";
      const at = auth.lastIndexOf("@");
      if (at >= 0) {
        const cred = auth.slice(0, at);
        auth = auth.slice(at + 1);
        const colon = cred.indexOf(":");
        r.username = pctEncode(colon >= 0 ? cred.slice(0, colon) : cred, USER_ENC);
        r.password = colon >= 0 ? pctEncode(cred.slice(colon + 1), USER_ENC) : "";
      }
      const pm = /:(\d*)$/.exec(auth);
      if (pm && !auth.endsWith("]")) {
        auth = auth.slice(0, pm.index);
        if (pm[1] !== "") {
          const port = Number(pm[1]);
          if (port > 65535) throw new TypeError("Invalid URL: port out of range");
          r.port = String(port) === SPECIAL[r.protocol] ? "" : String(port);
        }
      } else if (/:[^\]]*$/.test(auth) && !auth.includes("]")) throw new TypeError("Invalid URL: bad port");
      if (auth === "" && special && r.protocol !== "file:") throw new TypeError("Invalid URL: '" + input + "' has no host");
      r.hostname = auth === "" ? "" : parseHost(auth, special);
      r.pathname = path === "" ? (special ? "/" : "") : normalizePath(pctEncode(path, PATH_ENC), special);
    } else if (rest.startsWith("/")) {
      r.pathname = normalizePath(pctEncode(rest, PATH_ENC), false);
    } else {
      r.opaque = true;
      r.pathname = pctEncode(rest, /[\u0000-\u001f\u007f-\uffff]|[\ud800-\udbff][\udc00-\udfff]/g);
    }
    return r;
  }
  class URL {
    #r;
    #params;
    constructor(url, base) {
      const b = base === undefined ? undefined : base instanceof URL ? base.#r : parseURL(base);
      this.#r = parseURL(url instanceof URL ? url.href : url, b);
      this.#params = new URLSearchParams();
      URLSearchParams._attach(this.#params, this, this.#r.search);
    }
    static canParse(url, base) { try { new URL(url, base); return true; } catch (e) { return false; } }
    static parse(url, base) { try { return new URL(url, base); } catch (e) { return null; } }
    _setQuery(q) { this.#r.search = q ? "?" + q : ""; }
    get protocol() { return this.#r.protocol; }
    set protocol(v) {
      const p = String(v).replace(/:.*$/, "").toLowerCase() + ":";
      if ((p in SPECIAL) === (this.#r.protocol in SPECIAL) && /^[a-z][a-z0-9+.\-]*:$/.test(p)) {
        this.#r.protocol = p;
        if (this.#r.port === SPECIAL[p]) this.#r.port = "";
      }
    }
    get username() { return this.#r.username; }
    set username(v) { if (this.#r.hostname) this.#r.username = pctEncode(String(v), USER_ENC); }
    get password() { return this.#r.password; }
    set password(v) { if (this.#r.hostname) this.#r.password = pctEncode(String(v), USER_ENC); }
    get hostname() { return this.#r.hostname; }
    set hostname(v) { if (!this.#r.opaque) this.#r.hostname = parseHost(String(v), this.#r.protocol in SPECIAL); }
    get port() { return this.#r.port; }
    set port(v) {
      v = String(v);
      if (v === "") { this.#r.port = ""; return; }
      const m = /^\d+/.exec(v);
      if (m && Number(m[0]) <= 65535) this.#r.port = String(Number(m[0])) === SPECIAL[this.#r.protocol] ? "" : String(Number(m[0]));
    }
    get host() { return this.#r.hostname + (this.#r.port ? ":" + this.#r.port : ""); }
    set host(v) {
      const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(String(v));
      if (!m) return;
      this.hostname = m[1];
      if (m[2] !== undefined) this.port = m[2];
    }
    get origin() {
      const p = this.#r.protocol;
      return p in SPECIAL && p !== "file:" ? p + "//" + this.host : "null";
    }
    get pathname() { return this.#r.pathname; }
    set pathname(v) {
      if (this.#r.opaque) return;
      v = String(v);
      if (!v.startsWith("/")) v = "/" + v;
      this.#r.pathname = normalizePath(pctEncode(v, PATH_ENC), this.#r.protocol in SPECIAL);
    }
    get search() { return this.#r.search; }
    set search(v) {
      v = String(v);
      if (v.startsWith("?")) v = v.slice(1);
      this.#r.search = v ? "?" + pctEncode(v, QUERY_ENC) : "";
      URLSearchParams._reparse(this.#params, this.#r.search);
    }
    get searchParams() { return this.#params; }
    get hash() { return this.#r.hash; }
    set hash(v) {
      v = String(v);
      if (v.startsWith("#")) v = v.slice(1);
      this.#r.hash = v ? "#" + pctEncode(v, FRAG_ENC) : "";
    }
    get href() {
      const r = this.#r;
      let auth = "";
      if (r.opaque) return r.protocol + r.pathname + r.search + r.hash;
      if (r.hostname !== "" || r.protocol === "file:") {
        auth = "//";
        if (r.username || r.password) auth += r.username + (r.password ? ":" + r.password : "") + "@";
        auth += this.host;
      }
      return r.protocol + auth + r.pathname + r.search + r.hash;
    }
    set href(v) {
      this.#r = parseURL(v);
      URLSearchParams._reparse(this.#params, this.#r.search);
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }
  define("URL", URL);

  // ---- structuredClone ----
  function cloneError(msg) {
    return typeof DOMException === "function" ? new DOMException(msg, "DataCloneError") : new TypeError(msg);
  }
  function clone(v, seen) {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) {
      if (typeof v === "symbol") throw cloneError("A Symbol could not be cloned");
      return v;
    }
    if (typeof v === "function") throw cloneError((v.name || "function") + " could not be cloned");
    if (seen.has(v)) return seen.get(v);
    let out;
    const proto = Object.getPrototypeOf(v);
    if (Array.isArray(v)) {
      out = new Array(v.length);
      seen.set(v, out);
      for (const k of Object.keys(v)) out[k] = clone(v[k], seen);
      return out;
    }
    if (v instanceof Date) out = new Date(v.getTime());
    else if (v instanceof RegExp) out = new RegExp(v.source, v.flags);
    else if (v instanceof ArrayBuffer) out = v.slice(0);
    else if (ArrayBuffer.isView(v)) {
      const buf = clone(v.buffer, seen);
      out = v instanceof DataView ? new DataView(buf, v.byteOffset, v.byteLength) : new v.constructor(buf, v.byteOffset, v.length);
    } else if (v instanceof Map) {
      out = new Map();
      seen.set(v, out);
      for (const [k, x] of v) out.set(clone(k, seen), clone(x, seen));
      return out;
    } else if (v instanceof Set) {
      out = new Set();
      seen.set(v, out);
      for (const x of v) out.add(clone(x, seen));
      return out;
    } else if (v instanceof Error) {
      const E = { EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError }[v.name] || Error;
      out = new E(v.message);
      if (v.stack !== undefined) out.stack = v.stack;
      if ("cause" in v) out.cause = clone(v.cause, seen);
    } else if (v instanceof Boolean || v instanceof Number || v instanceof String) out = Object(v.valueOf());
    else if (v instanceof BigInt) out = Object(v.valueOf());
    else if (proto === Object.prototype || proto === null || typeof v === "object") {
      if (v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef)
        throw cloneError("#<" + (proto && proto.constructor ? proto.constructor.name : "Object") + "> could not be cloned");
      out = {};
      seen.set(v, out);
      for (const k of Object.keys(v)) out[k] = clone(v[k], seen);
      return out;
    }
    seen.set(v, out);
    return out;
  }
  define("structuredClone", (value, options) => {
    if (options && options.transfer && options.transfer.length) throw cloneError("Transferring is not supported");
    return clone(value, new Map());
  });

  // ---- crypto ----
  const cryptoObj = {
    getRandomValues(arr) {
      if (!ArrayBuffer.isView(arr) || arr instanceof DataView || arr instanceof Float32Array || arr instanceof Float64Array)
        throw new TypeError("getRandomValues: expected an integer TypedArray");
      if (arr.byteLength > 65536) {
        const e = typeof DOMException === "function" ? new DOMException("getRandomValues: at most 65536 bytes", "QuotaExceededError") : new RangeError("at most 65536 bytes");
        throw e;
      }
      new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).set(host.randomBytes(arr.byteLength));
      return arr;
    },
    randomUUID() {
      const b = host.randomBytes(16);
      b[6] = (b[6] & 0x0f) | 0x40;
      b[8] = (b[8] & 0x3f) | 0x80;
      const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
    },
  };
  define("crypto", cryptoObj);

  // ---- fetch: Headers, Request, Response ----
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  function normName(n) {
    n = String(n);
    if (!TOKEN.test(n)) throw new TypeError("Invalid header name: '" + n + "'");
    return n.toLowerCase();
  }
  function normValue(v) {
    v = String(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(v)) throw new TypeError("Invalid header value");
    return v;
  }
  class Headers {
    #list = []; // [lowercase name, value]
    constructor(init) {
      if (init == null) return;
      if (init instanceof Headers) this.#list = init.#list.map((p) => p.slice());
      else if (typeof init[Symbol.iterator] === "function")
        for (const pair of init) {
          const p = Array.from(pair);
          if (p.length !== 2) throw new TypeError("Each header must be a [name, value] pair");
          this.append(p[0], p[1]);
        }
      else for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(n, v) { this.#list.push([normName(n), normValue(v)]); }
    delete(n) { n = normName(n); this.#list = this.#list.filter((p) => p[0] !== n); }
    get(n) {
      n = normName(n);
      const vs = this.#list.filter((p) => p[0] === n).map((p) => p[1]);
      return vs.length ? vs.join(", ") : null;
    }
    getSetCookie() { return this.#list.filter((p) => p[0] === "set-cookie").map((p) => p[1]); }
    has(n) { n = normName(n); return this.#list.some((p) => p[0] === n); }
    set(n, v) {
      n = normName(n); v = normValue(v);
      const i = this.#list.findIndex((p) => p[0] === n);
      if (i < 0) this.#list.push([n, v]);
      else { this.#list[i][1] = v; this.#list = this.#list.filter((p, j) => j <= i || p[0] !== n); }
    }
    *entries() {
      const names = [...new Set(this.#list.map((p) => p[0]))].sort();
      for (const n of names) {
        if (n === "set-cookie") for (const v of this.getSetCookie()) yield [n, v];
        else yield [n, this.get(n)];
      }
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    forEach(fn, thisArg) { for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this); }
    [Symbol.iterator]() { return this.entries(); }
    static _raw(h) { return h.#list.map((p) => [p[0], p[1]]); }
  }
  define("Headers", Headers);

  function bodyBytes(body, headers) {
    if (body == null) return null;
    if (typeof body === "string") {
      if (headers && !headers.has("content-type")) headers.set("content-type", "text/plain;charset=UTF-8");
      return host.encodeUtf8(body);
    }
    if (body instanceof URLSearchParams) {
      if (headers && !headers.has("content-type")) headers.set("content-type", "application/x-www-form-urlencoded;charset=UTF-8");
      return host.encodeUtf8(body.toString());
    }
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return toBytes(body, "body").slice();
    if (typeof body === "object" && typeof body[Symbol.asyncIterator] === "function")
      throw new TypeError("Streaming bodies are not supported");
    return bodyBytes(String(body), headers);
  }
  class Body {
    #bytes; #used = false;
    _initBody(bytes) { this.#bytes = bytes; }
    get bodyUsed() { return this.#used; }
    get body() { return null; }
    #take() {
      if (this.#used) return Promise.reject(new TypeError("Body has already been consumed"));
      this.#used = true;
      return Promise.resolve(this.#bytes || new Uint8Array(0));
    }
    _peekBytes() { return this.#bytes; }
    arrayBuffer() { return this.#take().then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); }
    bytes() { return this.#take().then((b) => b.slice()); }
    text() { return this.#take().then((b) => host.decodeUtf8(b, false)); }
    // parsed by trail when the bytes are plain JSON (JSON.parse's value), else by JSON.parse
    json() {
      return this.#take().then((b) => {
        const v = host.jsonParse(b);
        return v !== undefined ? v : JSON.parse(host.decodeUtf8(b, false));
      });
    }
  }
  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"];
  class Request extends Body {
    #url; #method; #headers; #timeout;
    constructor(input, init = {}) {
      super();
      const src = input instanceof Request ? input : null;
      this.#url = src ? src.url : new URL(String(input)).href;
      let m = init.method !== undefined ? String(init.method) : src ? src.method : "GET";
      if (METHODS.includes(m.toUpperCase())) m = m.toUpperCase();
      if (!TOKEN.test(m)) throw new TypeError("Invalid method '" + m + "'");
      this.#method = m;
      this.#headers = new Headers(init.headers !== undefined ? init.headers : src ? src.headers : undefined);
      const body = init.body !== undefined ? init.body : src ? src._peekBytes() : null;
      if (body != null && (m === "GET" || m === "HEAD")) throw new TypeError("A " + m + " request cannot have a body");
      this._initBody(bodyBytes(body, this.#headers));
      this.#timeout = init.timeout !== undefined ? Number(init.timeout) : src ? src.timeout : 0;
    }
    get url() { return this.#url; }
    get method() { return this.#method; }
    get headers() { return this.#headers; }
    get timeout() { return this.#timeout; }
    get redirect() { return "follow"; }
    clone() { return new Request(this); }
  }
  define("Request", Request);
  class Response extends Body {
    #status; #statusText; #headers; #url; #redirected;
    constructor(body = null, init = {}) {
      super();
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError("Invalid status " + init.status);
      this.#status = status;
      this.#statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.#headers = new Headers(init.headers);
      this._initBody(bodyBytes(body, this.#headers));
      this.#url = "";
      this.#redirected = false;
    }
    static _make(status, statusText, headers, bytes, url, redirected) {
      const r = new Response(null, { status: 200 });
      r.#status = status;
      r.#statusText = statusText;
      r.#headers = new Headers(headers);
      r._initBody(bytes);
      r.#url = url;
      r.#redirected = redirected;
      return r;
    }
    static json(data, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(JSON.stringify(data), Object.assign({}, init, { headers }));
    }
    static error() { return Response._make(0, "", [], null, "", false); }
    static redirect(url, status = 302) {
      return Response._make(status, "", [["location", new URL(url).href]], null, "", false);
    }
    get status() { return this.#status; }
    get statusText() { return this.#statusText; }
    get ok() { return this.#status >= 200 && this.#status < 300; }
    get headers() { return this.#headers; }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    get type() { return this.#status === 0 ? "error" : "basic"; }
    clone() {
      const b = this._peekBytes();
      return Response._make(this.#status, this.#statusText, Headers._raw(this.#headers), b ? b.slice() : null, this.#url, this.#redirected);
    }
  }
  define("Response", Response);
  define("fetch", (input, init) => {
    let req;
    try {
      req = new Request(input, init);
      const u = new URL(req.url);
      if (u.protocol !== "http:" && u.protocol !== "https:")
        throw new TypeError("fetch: only http: and https: URLs are supported, not " + u.protocol);
    } catch (e) {
      return Promise.reject(e);
    }
    return host
      .fetch(req.method, req.url, Headers._raw(req.headers), req._peekBytes(), req.timeout || 0)
      .then((r) => Response._make(r[0], r[1], r[2], r[3], r[4], r[4] !== req.url), (e) => {
        throw new TypeError("fetch failed: " + (e && e.message ? e.message : String(e)));
      });
  });

  // The rest of the host primitives stay reachable only through the SDK.
  return { fireTimer };
})(__trailhost)
