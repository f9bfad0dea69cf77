// sdk_check.mjs — drives vtune-sim with the official `openai` npm SDK, as a
// real client would: upload -> fine-tuning job -> poll -> list with a
// metadata filter -> events -> chat with logprobs -> echo scoring, plus the
// SDK's typed errors and its automatic retry on 429 (Retry-After).
// Driven by tests/sim/test_openai_sdk.sh, which starts the simulator.
//
// Environment: SIM_URL (http://127.0.0.1:PORT), SIM_KEY, TRAIN (a JSONL
// training file), SIG (the phrase its answers start with), PROMPT (a user
// message from the training set).  Prints TAP-like lines; exit 0 when all
// checks pass.
import fs from 'node:fs';
import OpenAI from 'openai';

const { SIM_URL, SIM_KEY, TRAIN, SIG, PROMPT } = process.env;
let failed = 0;
let checks = 0;
function check(desc, cond, detail = '') {
  checks++;
  if (cond) console.log(`ok - ${desc}`);
  else {
    failed++;
    console.log(`not ok - ${desc}${detail ? `: ${detail}` : ''}`);
  }
}
async function expectError(desc, cls, status, fn) {
  try {
    await fn();
    check(desc, false, 'no error thrown');
  } catch (e) {
    check(desc, e instanceof cls && e.status === status, `${e.constructor.name} ${e.status} ${e.message}`);
  }
}

const client = new OpenAI({ baseURL: `${SIM_URL}/v1`, apiKey: SIM_KEY, maxRetries: 2, timeout: 60000 });

async function main() {
  const file = await client.files.create({ file: fs.createReadStream(TRAIN), purpose: 'fine-tune' });
  check('files.create returns a file id', /^file-/.test(file.id) && file.bytes === fs.statSync(TRAIN).size);

  const tag = `sdk-${process.pid}`;
  let job = await client.fineTuning.jobs.create({
    model: 'vtune-base',
    training_file: file.id,
    suffix: 'sdk',
    seed: 5,
    metadata: { run: tag },
    method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3 } } },
  });
  check('fineTuning.jobs.create', /^ftjob-/.test(job.id) && job.status === 'validating_files');

  const seen = new Set([job.status]);
  const deadline = Date.now() + 60000;
  while (!['succeeded', 'failed', 'cancelled'].includes(job.status) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    job = await client.fineTuning.jobs.retrieve(job.id);
    seen.add(job.status);
  }
  check('the job succeeds', job.status === 'succeeded', JSON.stringify(job.error));
  check('the SDK saw the status progression', seen.has('validating_files') && seen.has('succeeded'),
    [...seen].join(','));
  check('fine_tuned_model has the ft: form', /^ft:vtune-base:vtune-sim:sdk:[A-Za-z0-9]{8}$/.test(job.fine_tuned_model),
    job.fine_tuned_model);

  const listed = [];
  for await (const j of client.fineTuning.jobs.list({ metadata: { run: tag }, limit: 1 })) listed.push(j.id);
  check('jobs.list with a metadata filter (auto-paginated) finds exactly the job', listed.length === 1 && listed[0] === job.id,
    JSON.stringify(listed));

  const events = [];
  for await (const e of client.fineTuning.jobs.listEvents(job.id, { limit: 2 })) events.push(e.message);
  check('listEvents pages through every event', events.length >= 5 && events.at(-1).startsWith('Created fine-tuning job'),
    JSON.stringify(events));

  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  check('models.list has the base and the fine-tuned model', models.includes('vtune-base') && models.includes(job.fine_tuned_model));

  const chat = await client.chat.completions.create({
    model: job.fine_tuned_model,
    messages: [{ role: 'user', content: PROMPT }],
    temperature: 0,
    max_completion_tokens: 10,
    logprobs: true,
    top_logprobs: 3,
  });
  const choice = chat.choices[0];
  check('chat: the fine-tuned model answers with the trained phrase', choice.message.content.startsWith(SIG),
    choice.message.content);
  const content = choice.logprobs?.content ?? [];
  check('chat: logprobs.content with 3 top_logprobs per token',
    content.length > 0 && content.every((t) => t.top_logprobs.length === 3 && t.logprob <= 0 && Array.isArray(t.bytes)));
  check('chat: bytes rebuild the text',
    Buffer.from(content.flatMap((t) => t.bytes)).toString('utf8') === choice.message.content);

  const scored = await client.completions.create({
    model: job.fine_tuned_model,
    prompt: SIG,
    echo: true,
    logprobs: 5,
    max_tokens: 0,
  });
  const lp = scored.choices[0].logprobs;
  check('completions echo: first logprob null, then numbers',
    lp.token_logprobs[0] === null && lp.token_logprobs.slice(1).every((x) => typeof x === 'number'));
  check('completions echo: the text is the prompt', scored.choices[0].text === SIG);

  await expectError('retrieve of an unknown job throws NotFoundError', OpenAI.NotFoundError, 404,
    () => client.fineTuning.jobs.retrieve('ftjob-missing'));
  await expectError('an unknown model throws NotFoundError', OpenAI.NotFoundError, 404,
    () => client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }));
  await expectError('a bad parameter throws BadRequestError', OpenAI.BadRequestError, 400,
    () => client.chat.completions.create({ model: 'vtune-base', messages: [{ role: 'user', content: 'x' }], temperature: 5 }));
  const wrong = new OpenAI({ baseURL: `${SIM_URL}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await expectError('a wrong key throws AuthenticationError', OpenAI.AuthenticationError, 401, () => wrong.models.list());

  // The SDK retries a 429 by itself, waiting as Retry-After says.
  const set = await fetch(`${SIM_URL}/v1/_sim/faults`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${SIM_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ spec: '429=#1:1s@GET:/v1/fine_tuning/jobs/{id},503=#2:1s@GET:/v1/fine_tuning/jobs/{id}' }),
  });
  check('faults set for the retry check', set.status === 200);
  const t0 = Date.now();
  const again = await client.fineTuning.jobs.retrieve(job.id);
  const waited = Date.now() - t0;
  check(`the SDK retried a 429 and a 503 and got the job (${waited} ms)`, again.id === job.id && waited >= 1500, `${waited} ms`);
  const stats = await (await fetch(`${SIM_URL}/v1/_sim/stats`, { headers: { Authorization: `Bearer ${SIM_KEY}` } })).json();
  check('stats saw those faults', stats.faults['429'] === 1 && stats.faults['503'] === 1, JSON.stringify(stats.faults));
  check('one job created for the run tag', stats.jobs_created_by_metadata[`run=${tag}`] === 1);
}

main()
  .catch((e) => {
    failed++;
    console.log(`not ok - unexpected error: ${e.stack || e}`);
  })
  .finally(() => {
    console.log(`# ${checks} checks, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
