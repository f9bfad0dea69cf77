// schema_check.mjs — validates saved vtune-sim responses against the
// component schemas of the official OpenAI spec with ajv (JSON Schema
// 2020-12).  Driven by tests/sim/test_schema.sh, which saves each response
// as DIR/NN-SCHEMA.json (SCHEMA a name under #/components/schemas/).
//
//   node schema_check.mjs SPEC.json DIR
//
// The spec mixes OpenAPI 3.0 idioms into its 3.1 schemas; as
// ../shared/README.md says, they are normalised first: a boolean
// exclusiveMinimum/exclusiveMaximum becomes the numeric form, and the
// custom "unixtime" format (and OpenAPI's "binary") are registered.
// Unknown x-* keywords are ignored (strict: false).
//
// One documented relaxation: a file named NN-CreateCompletionResponse+echo
// is checked against a copy of CreateCompletionResponse whose
// logprobs.token_logprobs and top_logprobs items may also be null.  The
// spec types them as plain numbers/objects, yet OpenAI (and vLLM, Together)
// answer null for the first echoed prompt token, which has no context; the
// simulator does the same because clients rely on it.
//
// Each file is also checked with its first required field removed, which
// must fail (a negative control: a validator that resolved nothing would
// accept everything).  Exit 0 when every file validates; 1 with each error
// otherwise.
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const [specPath, dir] = process.argv.slice(2);
if (!specPath || !dir) {
  console.error('usage: node schema_check.mjs SPEC.json DIR');
  process.exit(2);
}
const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));

function normalise(node) {
  if (Array.isArray(node)) {
    node.forEach(normalise);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [bound, excl] of [['minimum', 'exclusiveMinimum'], ['maximum', 'exclusiveMaximum']]) {
    if (typeof node[excl] === 'boolean') {
      if (node[excl] && typeof node[bound] === 'number') {
        node[excl] = node[bound];
        delete node[bound];
      } else {
        delete node[excl];
      }
    }
  }
  for (const v of Object.values(node)) normalise(v);
}
normalise(spec);

// The echo relaxation, on a copy under a new name.
const schemas = spec.components.schemas;
const echo = structuredClone(schemas.CreateCompletionResponse);
const lp = echo.properties.choices.items.properties.logprobs.anyOf[0].properties;
lp.token_logprobs.items = { anyOf: [lp.token_logprobs.items, { type: 'null' }] };
lp.top_logprobs.items = { anyOf: [lp.top_logprobs.items, { type: 'null' }] };
schemas['CreateCompletionResponse+echo'] = echo;

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addFormat('unixtime', { type: 'number', validate: (n) => Number.isInteger(n) && n >= 0 });
ajv.addFormat('binary', true);
ajv.addSchema(spec, 'openai.json');

const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
if (files.length === 0) {
  console.error(`no responses in ${dir}`);
  process.exit(1);
}
let failed = 0;
const seen = new Set();
for (const f of files) {
  const name = f.replace(/^\d+-/, '').replace(/\.json$/, '');
  const validate = ajv.getSchema(`openai.json#/components/schemas/${name}`);
  if (!validate) {
    console.log(`not ok - ${f}: no schema ${name} in the spec`);
    failed++;
    continue;
  }
  let body;
  try {
    body = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  } catch (e) {
    console.log(`not ok - ${f}: not JSON (${e.message})`);
    failed++;
    continue;
  }
  // A negative control: without its first required field the body must be
  // rejected, or this validator proves nothing.
  const required = schemas[name].required || [];
  const broken = structuredClone(body);
  if (required.length > 0) delete broken[required[0]];
  if (required.length === 0 || validate(broken)) {
    console.log(`not ok - ${f}: the validator accepts it without '${required[0]}'`);
    failed++;
    continue;
  }
  if (validate(body)) {
    console.log(`ok - ${f} is a valid ${name}`);
    seen.add(name);
  } else {
    failed++;
    console.log(`not ok - ${f} is not a valid ${name}:`);
    for (const e of validate.errors.slice(0, 10)) {
      console.log(`#   ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
    }
  }
}
console.log(`# ${files.length} responses, ${seen.size} schemas, ${failed} invalid`);
process.exit(failed ? 1 : 0);
