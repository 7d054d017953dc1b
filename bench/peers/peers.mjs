// Runs editing traces through the peer CRDTs kith is compared with
// (diamond-types, Yjs, Loro, Automerge; versions pinned in package.json) and
// measures what `kith bench trace` measures, so that run.sh can print them
// side by side. One peer and one trace per process: WebAssembly memory only
// grows, so a fresh process is the only way to see one document's memory.
//
//   node --expose-gc peers.mjs PEER TRACE [RUNS]   -> one JSON line
//   node peers.mjs --table < lines.jsonl            -> the side-by-side table
//
// Trace positions count code points; JS strings count UTF-16 units. They
// differ only for astral characters (U+10000 and up), so positions are
// converted only when a trace holds some.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const PEERS = ['diamond-types', 'yjs', 'loro', 'automerge'];
const PKG = {
  'diamond-types': 'diamond-types-node',
  yjs: 'yjs',
  loro: 'loro-crdt',
  automerge: '@automerge/automerge',
};

function pkgVersion(peer) {
  // Read from the file: some packages do not export their package.json.
  const url = new URL(`./node_modules/${PKG[peer]}/package.json`, import.meta.url);
  return JSON.parse(fs.readFileSync(url, 'utf8')).version;
}

function loadTrace(path) {
  let buf = fs.readFileSync(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  const d = JSON.parse(buf.toString('utf8'));
  const concurrent = d.kind === 'concurrent' || d.numAgents !== undefined;
  const astral = /[\u{10000}-\u{10FFFF}]/u;
  let hasAstral = false;
  let patches = 0;
  for (const t of d.txns) {
    patches += t.patches.length;
    for (const p of t.patches) if (!hasAstral && astral.test(p[2])) hasAstral = true;
  }
  return { txns: d.txns, end: d.endContent, concurrent, nagents: d.numAgents || 1, hasAstral, patches };
}

// UTF-16 index of code point @cp in @s (only for traces with astral chars).
function u16(s, cp) {
  let i = 0;
  while (cp > 0 && i < s.length) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff ? 2 : 1;
    cp--;
  }
  return i;
}

// [pos, del] in UTF-16 units for a patch applied to text @s.
function toU16(s, pos, del) {
  const a = u16(s, pos);
  return [a, u16(s.slice(a), del)];
}

// ---------------------------------------------------------------------------
// Each peer: seq(trace) -> doc, conc(trace) -> doc, text(doc), encode(doc),
// decode(bytes) -> text, free(doc). The result of seq/conc is the document
// whose text, encoding and memory are reported.

async function loadPeer(peer) {
  if (peer === 'diamond-types') {
    const { Doc, OpLog } = require('diamond-types-node');
    return {
      // diamond-types counts positions in code points already.
      seq(t) {
        const doc = new Doc('trace');
        for (const x of t.txns)
          for (const [pos, del, ins] of x.patches) {
            if (del) doc.del(pos, del);
            if (ins) doc.ins(pos, ins);
          }
        return doc;
      },
      // Native: an OpLog takes each edit with its parents' version, and a
      // checkout merges everything (the same shape as kith_doc_edit_at).
      conc(t) {
        const oplog = new OpLog();
        const front = new Array(t.txns.length);
        const names = [];
        for (let a = 0; a < t.nagents; a++) names.push(`agent${a}`);
        for (let i = 0; i < t.txns.length; i++) {
          const x = t.txns[i];
          let pv = [];
          for (const p of x.parents) for (const v of front[p]) if (!pv.includes(v)) pv.push(v);
          let parents = new Uint32Array(pv);
          let made = false;
          oplog.setAgent(names[x.agent]);
          for (const [pos, del, ins] of x.patches) {
            let lv;
            if (del) { lv = oplog.del(pos, del, parents); parents = new Uint32Array([lv]); made = true; }
            if (ins) { lv = oplog.ins(pos, ins, parents); parents = new Uint32Array([lv]); made = true; }
          }
          front[i] = made ? [parents[0]] : pv;
        }
        const branch = oplog.checkout();
        return { oplog, branch };
      },
      text: (d) => (d.branch ? d.branch.get() : d.get()),
      encode: (d) => (d.oplog ? d.oplog.toBytes() : d.toBytes()),
      decode(bytes) {
        const d = Doc.fromBytes(bytes);
        const s = d.get();
        d.free();
        return s;
      },
      free(d) {
        if (d.oplog) { d.branch.free(); d.oplog.free(); } else d.free();
      },
    };
  }

  if (peer === 'yjs') {
    const Y = require('yjs');
    const LOCAL = Symbol('local');
    return {
      seq(t) {
        const doc = new Y.Doc();
        doc.clientID = 1;
        const text = doc.getText('t');
        for (const x of t.txns)
          doc.transact(() => {
            for (let [pos, del, ins] of x.patches) {
              if (t.hasAstral) [pos, del] = toU16(text.toString(), pos, del);
              if (del) text.delete(pos, del);
              if (ins) text.insert(pos, ins);
            }
          });
        return doc;
      },
      conc(t) {
        return replicate(t, {
          make(a) {
            const doc = new Y.Doc();
            doc.clientID = a + 1;
            const log = [];
            doc.on('update', (u, origin) => { if (origin === LOCAL) log.push(u); });
            return { doc, text: doc.getText('t'), log };
          },
          edit(r, patches) {
            const n = r.log.length;
            r.doc.transact(() => {
              for (let [pos, del, ins] of patches) {
                if (t.hasAstral) [pos, del] = toU16(r.text.toString(), pos, del);
                if (del) r.text.delete(pos, del);
                if (ins) r.text.insert(pos, ins);
              }
            }, LOCAL);
            return r.log.length > n ? r.log.pop() : null;
          },
          apply(r, u) { Y.applyUpdate(r.doc, u); },
          final(logs) {
            const doc = new Y.Doc();
            doc.transact(() => { for (const u of logs) Y.applyUpdate(doc, u); });
            return doc;
          },
          drop(r) { r.doc.destroy(); },
        });
      },
      text: (d) => d.getText('t').toString(),
      encode: (d) => Y.encodeStateAsUpdate(d),
      decode(bytes) {
        const d = new Y.Doc();
        Y.applyUpdate(d, bytes);
        const s = d.getText('t').toString();
        d.destroy();
        return s;
      },
      free: (d) => d.destroy(),
    };
  }

  if (peer === 'loro') {
    const { LoroDoc } = require('loro-crdt');
    return {
      seq(t) {
        const doc = new LoroDoc();
        doc.setPeerId(1);
        const text = doc.getText('t');
        for (const x of t.txns)
          for (let [pos, del, ins] of x.patches) {
            if (t.hasAstral) [pos, del] = toU16(text.toString(), pos, del);
            if (del) text.delete(pos, del);
            if (ins) text.insert(pos, ins);
          }
        doc.commit();
        return doc;
      },
      conc(t) {
        return replicate(t, {
          make(a) {
            const doc = new LoroDoc();
            doc.setPeerId(a + 1);
            const log = [];
            doc.subscribeLocalUpdates((u) => log.push(u));
            return { doc, text: doc.getText('t'), log };
          },
          edit(r, patches) {
            const n = r.log.length;
            for (let [pos, del, ins] of patches) {
              if (t.hasAstral) [pos, del] = toU16(r.text.toString(), pos, del);
              if (del) r.text.delete(pos, del);
              if (ins) r.text.insert(pos, ins);
            }
            r.doc.commit();
            return r.log.length > n ? r.log.pop() : null;
          },
          apply(r, u) { r.doc.import(u); },
          final(logs) {
            const doc = new LoroDoc();
            doc.importBatch(logs);
            return doc;
          },
          drop(r) { r.doc.free(); },
        });
      },
      text: (d) => d.getText('t').toString(),
      encode: (d) => d.export({ mode: 'snapshot' }),
      decode(bytes) {
        const d = LoroDoc.fromSnapshot(bytes);
        const s = d.getText('t').toString();
        d.free();
        return s;
      },
      free: (d) => d.free(),
    };
  }

  if (peer === 'automerge') {
    const A = await import('@automerge/automerge');
    const actor = (a) => (a + 1).toString(16).padStart(8, '0');
    return {
      seq(t) {
        let doc = A.from({ text: '' }, { actor: actor(0) });
        for (const x of t.txns)
          doc = A.change(doc, (d) => {
            for (let [pos, del, ins] of x.patches) {
              if (t.hasAstral) [pos, del] = toU16(d.text, pos, del);
              A.splice(d, ['text'], pos, del, ins);
            }
          });
        return doc;
      },
      conc(t) {
        // Every replica starts from one shared change that creates the text
        // field, or each would create its own and they would conflict.
        const base = A.from({ text: '' }, { actor: 'ffffffff' });
        const baseChange = A.getLastLocalChange(base);
        const out = replicate(t, {
          make(a) { return { doc: A.clone(base, { actor: actor(a) }) }; },
          edit(r, patches) {
            if (!patches.length) return null;
            r.doc = A.change(r.doc, (d) => {
              for (let [pos, del, ins] of patches) {
                if (t.hasAstral) [pos, del] = toU16(d.text, pos, del);
                A.splice(d, ['text'], pos, del, ins);
              }
            });
            return A.getLastLocalChange(r.doc);
          },
          apply(r, u) { [r.doc] = A.applyChanges(r.doc, [u]); },
          final(logs) {
            let [doc] = A.applyChanges(A.init({ actor: 'fffffffe' }), [baseChange, ...logs]);
            return doc;
          },
          drop(r) { A.free(r.doc); },
        });
        A.free(base);
        return out;
      },
      text: (d) => d.text,
      encode: (d) => A.save(d),
      decode(bytes) {
        const d = A.load(bytes);
        const s = d.text;
        A.free(d);
        return s;
      },
      free: (d) => A.free(d),
    };
  }
  throw new Error(`unknown peer '${peer}' (one of ${PEERS.join(', ')})`);
}

// Replays a concurrent trace with one replica per agent, for peers that have
// no way to record an edit at a past version. Before each txn its agent's
// replica is brought to exactly the parents' version by applying, per other
// agent, that agent's txn updates up to the parents' version vector (each
// agent's txns are totally ordered, so a version is a vector of counts).
// Then the txn is made there as local edits, its update logged; at the end
// every logged update is applied to one fresh document: the merge.
function replicate(t, impl) {
  const n = t.nagents;
  const ntx = t.txns.length;
  if (n * ntx > 64e6) throw new Error(`${n} agents x ${ntx} txns is too many for this harness`);
  const vv = new Int32Array(n * ntx); // txn i's version vector at [i*n, i*n+n)
  const logs = Array.from({ length: n }, () => []); // per agent, per own txn
  const all = [];
  const reps = Array.from({ length: n }, (_, a) => ({ r: impl.make(a), have: new Int32Array(n) }));
  for (let i = 0; i < ntx; i++) {
    const x = t.txns[i];
    const row = vv.subarray(i * n, i * n + n);
    for (const p of x.parents)
      for (let b = 0; b < n; b++) if (vv[p * n + b] > row[b]) row[b] = vv[p * n + b];
    const rep = reps[x.agent];
    for (let b = 0; b < n; b++) {
      if (b === x.agent) continue;
      const lb = logs[b];
      for (let k = rep.have[b]; k < row[b]; k++) if (lb[k]) impl.apply(rep.r, lb[k]);
      if (row[b] > rep.have[b]) rep.have[b] = row[b];
    }
    const u = impl.edit(rep.r, x.patches);
    logs[x.agent].push(u);
    if (u) all.push(u);
    rep.have[x.agent] = row[x.agent] = logs[x.agent].length;
  }
  for (const { r } of reps) impl.drop(r);
  return impl.final(all);
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function memNow() {
  // Several passes: buffers freed by finalizers go only on a later one.
  for (let i = 0; i < 4; i++) global.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external; // external holds WebAssembly memory
}

async function bench(peer, path, runs) {
  const t = loadTrace(path);
  const name = path.replace(/^.*\//, '').replace(/\.json(\.gz)?$|\.gz$/, '');
  const res = {
    impl: peer, version: pkgVersion(peer), trace: name,
    kind: t.concurrent ? 'concurrent' : 'sequential', patches: t.patches,
  };
  if (t.concurrent)
    res.note = peer === 'diamond-types' ? 'native: edits at parent versions' : 'one replica per agent, updates merged';
  const p = await loadPeer(peer);
  const replay = t.concurrent ? p.conc : p.seq;
  const times = [];
  let doc = null;
  let mem = null;
  // Slow peers would take many minutes for --runs 5; stop repeating once the
  // replays have taken a minute and say how many ran.
  const started = performance.now();
  for (let r = 0; r < runs; r++) {
    if (r > 0 && performance.now() - started > 60e3) break;
    if (doc) { p.free(doc); doc = null; }
    const m0 = r === 0 ? memNow() : 0;
    const t0 = performance.now();
    doc = replay(t);
    times.push(performance.now() - t0);
    if (r === 0) mem = memNow() - m0; // first run: nothing reused from earlier runs
    const s = p.text(doc);
    if (t.end !== undefined && s !== t.end) {
      res.error = 'final text differs from endContent';
      break;
    }
  }
  res.replay_ms = median(times);
  res.runs = times.length;
  if (times.length < runs) res.note = `${res.note ? res.note + '; ' : ''}${times.length} run(s) in 60 s`;
  res.mem_kb = Math.round(mem / 1024);
  if (!res.error) {
    let bytes = null;
    const et = [], dt = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      bytes = p.encode(doc);
      et.push(performance.now() - t0);
    }
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const s = p.decode(bytes);
      dt.push(performance.now() - t0);
      if (s !== p.text(doc)) { res.error = 'decoded text differs'; break; }
    }
    res.encoded_bytes = bytes.length;
    res.encode_ms = median(et);
    res.decode_ms = median(dt);
  }
  p.free(doc);
  return res;
}

// ---------------------------------------------------------------------------
// The table: JSON lines from kith (--json) and from the peers, grouped per trace.

function fmt(v, d) {
  return v === undefined || v === null ? '-' : typeof v === 'number' ? v.toFixed(d) : String(v);
}

// kith's memory column is its own accounting; the RSS it measured goes beside it.
function kithNote(r) {
  if (r.impl !== 'kith' || r.rss_delta_kb === undefined) return '';
  return `RSS +${r.rss_delta_kb} kB over the replay; process peak ${r.peak_rss_kb} kB`;
}

function table(lines) {
  const rows = [];
  for (const l of lines) {
    if (!l.trim()) continue;
    try { rows.push(JSON.parse(l)); } catch { /* a peer's stray output line */ }
  }
  const traces = [...new Set(rows.map((r) => r.trace))];
  const out = [];
  const head = ['trace', 'impl', 'replay_ms', 'encoded_B', 'decode_ms', 'mem_kB', 'note'];
  const w = [22, 22, 10, 10, 10, 9];
  const line = (c) => c.map((s, i) => (i < 2 ? String(s).padEnd(w[i]) : i < 6 ? String(s).padStart(w[i]) : ` ${s}`)).join(' ');
  out.push(line(head));
  for (const tr of traces) {
    for (const r of rows.filter((x) => x.trace === tr)) {
      const impl = r.impl === 'kith' ? `kith ${r.version ?? ''}`.trim() : `${r.impl} ${r.version}`;
      const mem = r.impl === 'kith' ? (r.doc_bytes !== undefined ? Math.round(r.doc_bytes / 1024) : undefined) : r.mem_kb;
      out.push(line([
        `${tr}${r.kind === 'concurrent' ? '*' : ''}`, impl, fmt(r.replay_ms, 2), fmt(r.encoded_bytes, 0),
        fmt(r.decode_ms, 3), fmt(mem, 0), r.error ?? r.note ?? kithNote(r),
      ]));
    }
  }
  out.push('');
  out.push('* concurrent trace: replay_ms is the merge from scratch.');
  out.push('replay_ms, decode_ms: median of runs. encoded_B: the whole history as each saves it.');
  out.push('mem_kB: kith = kith_doc_mem (own accounting); peers = JS heap + external (incl. WASM');
  out.push('memory, which only grows) after gc with the document alive, first run, fresh process.');
  return out.join('\n');
}

const args = process.argv.slice(2);
if (args[0] === '--table') {
  process.stdout.write(table(fs.readFileSync(0, 'utf8').split('\n')) + '\n');
} else if (args[0] === '--check') {
  // Exit 0 only if every pinned package is installed at its pinned version.
  const want = JSON.parse(fs.readFileSync(new URL('./package.json', import.meta.url), 'utf8')).dependencies;
  let ok = true;
  for (const p of PEERS) {
    let have = null;
    try { have = pkgVersion(p); } catch { /* not installed */ }
    if (have !== want[PKG[p]]) ok = false;
  }
  process.exit(ok ? 0 : 1);
} else if (args[0] === '--versions') {
  for (const p of PEERS) console.log(`${PKG[p]} ${pkgVersion(p)}`);
} else if (args.length >= 2) {
  const [peer, path, runs = '5'] = args;
  let res;
  try {
    res = await bench(peer, path, Math.max(1, parseInt(runs, 10) || 5));
  } catch (e) {
    res = {
      impl: peer, version: PKG[peer] ? pkgVersion(peer) : '?',
      trace: path.replace(/^.*\//, '').replace(/\.json(\.gz)?$|\.gz$/, ''),
      error: `failed: ${String(e.message || e).split('\n')[0]}`,
    };
    try { res.kind = loadTrace(path).concurrent ? 'concurrent' : 'sequential'; } catch { /* unreadable */ }
  }
  console.log(JSON.stringify(res));
} else {
  console.error('usage: node --expose-gc peers.mjs PEER TRACE [RUNS] | --table < lines | --check | --versions');
  process.exit(2);
}
