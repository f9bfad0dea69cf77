// ctl_schema_check.mjs — validates saved `vtunectl --json` outputs against
// the JSON Schemas of ctl/schema/ (what vtunectl(1) JSON OUTPUT documents)
// with ajv (JSON Schema 2020-12, formats from ajv-formats).  Driven by
// tests/integration/test_json.sh, which saves each output as
// DIR/NN-SCHEMA.json (one JSON value) or DIR/NN-SCHEMA.ndjson (JSON Lines:
// each line is checked), SCHEMA the schema file's name without .json.
//
//   node ctl_schema_check.mjs SCHEMA_DIR DIR
//
// Negative controls, so that a schema that accepts everything fails here:
// each output is checked again with an undocumented key added to its first
// object (every schema is closed: stable keys), and, where its first object
// has a log10 key, with that value turned into the string "-inf"; both
// must be refused.  Exit 0 when all is as expected; 1 with each problem.
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [schemaDir, dir] = process.argv.slice(2);
if (!schemaDir || !dir) {
  console.error('usage: node ctl_schema_check.mjs SCHEMA_DIR DIR');
  process.exit(2);
}
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, strictRequired: false });
addFormats(ajv);
const ids = {};
for (const f of fs.readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort()) {
  const s = JSON.parse(fs.readFileSync(path.join(schemaDir, f), 'utf8'));
  ajv.addSchema(s);
  ids[f.replace(/\.json$/, '')] = s.$id;
}

let problems = 0, checked = 0;
const bad = (msg) => { problems++; console.log('FAIL ' + msg); };

// The first object of v (v itself, or its first element), or null.
function firstObject(v) {
  if (Array.isArray(v)) return v.length && typeof v[0] === 'object' && v[0] !== null ? v[0] : null;
  return typeof v === 'object' && v !== null ? v : null;
}

function check(validate, v, where) {
  checked++;
  if (!validate(v)) {
    bad(`${where}: ${ajv.errorsText(validate.errors, { separator: '; ' })}`);
    return;
  }
  const clone = structuredClone(v);
  const o = firstObject(clone);
  if (o) {
    o.__undocumented__ = 1;
    if (validate(clone)) bad(`${where}: still valid with an undocumented key (the schema is not closed)`);
    delete o.__undocumented__;
    const k = Object.keys(o).find((k) => k.includes('log10') && k !== 'log10_zero');
    if (k) {
      const old = o[k];
      o[k] = '-inf';
      if (validate(clone)) bad(`${where}: still valid with ${k} = "-inf"`);
      o[k] = old;
    }
  } else if (Array.isArray(clone)) {
    clone.push(1);
    if (validate(clone)) bad(`${where}: an array that takes a number as an element`);
  }
}

const files = fs.readdirSync(dir).sort();
for (const f of files) {
  const m = /^\d+-(.+)\.(json|ndjson)$/.exec(f);
  if (!m) { bad(`${f}: not NN-SCHEMA.json or NN-SCHEMA.ndjson`); continue; }
  const [, name, ext] = m;
  if (!ids[name]) { bad(`${f}: no schema ${name}.json in ${schemaDir}`); continue; }
  const validate = ajv.getSchema(ids[name]);
  const text = fs.readFileSync(path.join(dir, f), 'utf8');
  if (ext === 'json') {
    let v;
    try { v = JSON.parse(text); } catch (e) { bad(`${f}: not one JSON value: ${e.message}`); continue; }
    check(validate, v, f);
  } else {
    const lines = text.split('\n');
    if (lines.pop() !== '') bad(`${f}: the last line has no newline`);
    if (!lines.length) bad(`${f}: no line`);
    lines.forEach((l, i) => {
      let v;
      try { v = JSON.parse(l); } catch (e) { bad(`${f}:${i + 1}: not one JSON value: ${e.message}`); return; }
      check(validate, v, `${f}:${i + 1}`);
    });
  }
}
console.log(`${checked} outputs checked against ${Object.keys(ids).length} schemas, ${problems} problems`);
process.exit(problems ? 1 : 0);
