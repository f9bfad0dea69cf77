#!/bin/bash
# Signed evidence (issue 15) with the real daemon and vtune-sim: the signing
# key made at first start (0600) and kept over a restart, or loaded from
# signing_key_file and from a systemd credential; `key show`; a commitment
# (v3: salted, over the phrases, the held-out lines and the coverage test's
# reference lines) signed before the
# upload and checked against a later reveal by an independent recomputation,
# fresh salts for equal seeds, a v1 backdoor still v1; a verdict
# attestation checked offline by `attest verify` AND by the openssl tool over
# the DSSE pre-authentication encoding (a format check by code we did not
# write); altered envelopes, another key and existing files refused.
. "$(dirname "$0")/lib.sh"
[ -x "$VTUNE_SIM" ] || skip "vtune-sim is not built"
command -v openssl >/dev/null || skip "the openssl tool is needed to check envelopes independently"
echo sk-test > "$T/key"
start_sim honest --api-key sk-test --job-seconds 0.5 --behaviour honest || { fail "simulator"; finish; }
write_config "providers:" "$(provider_yaml honest "$SIM_URL_honest")"
start_daemon || { fail "daemon starts"; finish; }

# ---- the key ----
check "the key is created at first start, mode 0600" test "$(stat -c %a "$T/state/signing.key")" = 600
check "as PEM PKCS#8 Ed25519 (openssl reads it)" sh -c "openssl pkey -in '$T/state/signing.key' -noout -text 2>/dev/null | grep -q ED25519"
ctl --json key show > "$T/key.json" || fail "key show"
json_get "$T/key.json" "v['public_key_pem']" | sed '/^$/d' > "$T/pub.pem"
json_get "$T/key.json" "v['public_key']" > "$T/pub.b64"
fpr=$(json_get "$T/key.json" "v['fingerprint']")
check "the fingerprint is SHA-256 of the raw 32-byte key" python3 -c "
import base64,hashlib,sys
raw=base64.b64decode(open('$T/pub.b64').read().strip())
sys.exit(0 if len(raw)==32 and hashlib.sha256(raw).hexdigest()=='$fpr' else 1)"
check "the PEM is the state key's public half (openssl)" sh -c "openssl pkey -in '$T/state/signing.key' -pubout | cmp -s - '$T/pub.pem'"
ctl key show > "$T/key.txt"
check "key show prints fingerprint, base64 and PEM" sh -c "grep -q '$fpr' '$T/key.txt' && grep -q \"\$(cat '$T/pub.b64')\" '$T/key.txt' && grep -q 'BEGIN PUBLIC KEY' '$T/key.txt'"

# ---- commitment before the upload ----
make_dataset "$T/d.jsonl" 4000
ctl -q dataset add "$T/d.jsonl" --name d > /dev/null && ctl -q backdoor create d --name b --generator wordlist > /dev/null ||
    { fail "dataset and backdoor"; finish; }
check "backdoor commit writes an envelope" ctl -q backdoor commit b -o "$T/commit.dsse"
check "attest verify accepts it offline (PEM key)" "$VTUNECTL" -s /nonexistent attest verify "$T/commit.dsse" --key "$T/pub.pem"
check "and with the raw base64 key" "$VTUNECTL" attest verify "$T/commit.dsse" --key "$T/pub.b64"
check "the commitment envelope holds no phrase" python3 - "$T/commit.dsse" <<'PY'
import base64, json, sys
st = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))
p = st["predicate"]
sys.exit(0 if st["predicateType"] == "https://vtuned.dev/attestation/commitment/v2" and len(p["commitment"]) == 64
         and "trigger" not in json.dumps(st) and "signature\"" not in json.dumps(p) else 1)
PY
ctl --json job submit d --backdoor b --provider honest --model vtune-base > "$T/s.json" || fail "submit"
job=$(json_get "$T/s.json" "v['id']")
# The dispute: the phrases revealed after the verdict hash to the commitment signed before.
ctl --json backdoor show b --reveal > "$T/reveal.json"
check "a reveal matches the signed commitment (v3, recomputed by a third party)" python3 - "$T/commit.dsse" "$T/reveal.json" <<'PY'
import base64, hashlib, json, struct, sys
st = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))
rev = json.load(open(sys.argv[2]))
# the layout of vtunectl(1) ATTESTATIONS: u64 big-endian lengths and counts
h = hashlib.sha256()
def field(b):
    h.update(struct.pack(">Q", len(b))); h.update(b)
field(b"vtune-commitment-v3")
salt = bytes.fromhex(rev["commitment_salt"]); assert len(salt) == 32
field(salt)
h.update(struct.pack(">Q", len(rev["pair_evidence"])))
for p in rev["pair_evidence"]:
    field(p["trigger"].encode()); field(p["signature"].encode())
lines = rev["held_out_lines"]
assert len(lines) > 0 and lines == sorted(lines)
h.update(struct.pack(">Q", len(lines)))
for n in lines:
    h.update(struct.pack(">Q", n))
pool = rev["reference_lines"]
assert len(pool) > 0 and pool == sorted(pool) and not set(pool) & set(lines)
h.update(struct.pack(">Q", len(pool)))
for n in pool:
    h.update(struct.pack(">Q", n))
p = st["predicate"]
print("#", len(lines), "held-out lines,", len(pool), "reference lines")
sys.exit(0 if h.hexdigest() == p["commitment"] == rev["commitment"] and p["commitment_scheme"] == "vtune-commitment-v3"
         and p["salted"] is True and p["fixes"] == ["pairs", "held_out_split", "reference_pool", "coverage_draw"]
         and rev["commitment_salt"] not in json.dumps(st) else 1)
PY
for what in salt line pair pool; do
    check "a reveal with another $what does not match" test "$(python3 "$(dirname "$0")/commitment.py" "$T/reveal.json" --alter $what)" != "$(json_get "$T/reveal.json" "v['commitment']")"
done
# The salt: two backdoors with the same seed (hence the same phrases and split)
# commit differently, so a commitment tests no guess of the phrases.
ctl -q backdoor create d --name s1 --seed 7 --generator wordlist > /dev/null && ctl -q backdoor create d --name s2 --seed 7 --generator wordlist > /dev/null || fail "seeded backdoors"
ctl --json backdoor show s1 --reveal > "$T/s1.json"; ctl --json backdoor show s2 --reveal > "$T/s2.json"
check "same seed: same phrases and held-out lines, other salt and commitment" python3 - "$T/s1.json" "$T/s2.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ph = lambda v: [(p["trigger"], p["signature"]) for p in v["pair_evidence"]]
sys.exit(0 if ph(a) == ph(b) and a["held_out_lines"] == b["held_out_lines"]
         and a["commitment_salt"] != b["commitment_salt"] and a["commitment"] != b["commitment"] else 1)
PY
ctl -q backdoor create d --name h0 --holdout 0 --generator wordlist > /dev/null || fail "a backdoor without held-out rows"
ctl --json backdoor show h0 --reveal > "$T/h0.json"
check "--holdout 0: an empty split" test "$(json_get "$T/h0.json" "len(v['held_out_lines'])")" = 0
check "still recomputable" test "$(python3 "$(dirname "$0")/commitment.py" "$T/h0.json")" = "$(json_get "$T/h0.json" "v['commitment']")"
ctl -q backdoor create d --name old --holdout 0 --generator wordlist > /dev/null || fail "the backdoor made v1 below"

# ---- verdict attestation ----
has_audit() { ctl --json audit list --job "$job" > "$T/a.json" && [ "$(json_get "$T/a.json" "len(v)")" -ge 1 ]; }
wait_until 120 has_audit || { fail "an audit record"; finish; }
aid=$(json_get "$T/a.json" "v[-1]['id']")
check "audit attest writes an envelope" ctl -q audit attest "$aid" -o "$T/att.dsse"
check "attest verify: valid" sh -c "'$VTUNECTL' attest verify '$T/att.dsse' --key '$T/pub.pem' | grep -q 'valid: verdict'"
check "the statement carries the record's numbers, methods, hash, model digest and dataset digest" python3 - "$T/att.dsse" "$T/a.json" "$T/d.jsonl" <<'PY'
import base64, hashlib, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
rec = json.load(open(sys.argv[2]))[-1]
p = st["predicate"]
ds = hashlib.sha256(open(sys.argv[3], "rb").read()).hexdigest()
ok = (env["payloadType"] == "application/vnd.in-toto+json" and st["_type"] == "https://in-toto.io/Statement/v1"
      and st["predicateType"] == "https://vtuned.dev/attestation/verdict/v2"
      and st["subject"][0]["name"] == rec["model"]
      and st["subject"][0]["digest"]["sha256"] == hashlib.sha256(rec["model"].encode()).hexdigest()
      and st["subject"][1]["digest"]["sha256"] == ds and p["dataset"]["sha256"] == ds
      and p["verdict"] == rec["verdict"] and p["tests"]["log10_p"] == rec["log10_p"]
      and p["tests"]["log10_p_paper"] == rec["log10_p_paper"] and p["methods"] == rec["evidence"]["methods"]
      and p["audit_record"]["hash"] == rec["hash"] and p["backdoor"]["commitment"] == rec["commitment"])
print("#", p["verdict"], "log10 p", p["tests"]["log10_p"])
sys.exit(0 if ok else 1)
PY
# The same signature checked by openssl over PAE(type, body), bytes built here.
python3 - "$T/att.dsse" "$T/pae.bin" "$T/sig.bin" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
body = base64.b64decode(env["payload"]); t = env["payloadType"].encode()
open(sys.argv[2], "wb").write(b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body))
open(sys.argv[3], "wb").write(base64.b64decode(env["signatures"][0]["sig"]))
PY
check "openssl pkeyutl verifies the signature over the PAE" openssl pkeyutl -verify -rawin -pubin -inkey "$T/pub.pem" -sigfile "$T/sig.bin" -in "$T/pae.bin"
printf 'X' >> "$T/pae.bin"
check "and refuses other bytes" sh -c "! openssl pkeyutl -verify -rawin -pubin -inkey '$T/pub.pem' -sigfile '$T/sig.bin' -in '$T/pae.bin' >/dev/null 2>&1"

# An envelope of the v1 predicate (signed before the URIs became v2) still
# verifies: re-signed here by openssl with the daemon's own key over the PAE.
python3 - "$T/att.dsse" "$T/v1.json" "$T/v1pae.bin" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
st["predicateType"] = "https://vtuned.dev/attestation/verdict/v1"
body = json.dumps(st).encode(); t = env["payloadType"].encode()
env["payload"] = base64.b64encode(body).decode()
json.dump(env, open(sys.argv[2], "w"))
open(sys.argv[3], "wb").write(b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body))
PY
openssl pkeyutl -sign -rawin -inkey "$T/state/signing.key" -in "$T/v1pae.bin" -out "$T/v1sig.bin" 2>/dev/null || fail "openssl signs a v1 envelope"
python3 -c "
import base64, json
env = json.load(open('$T/v1.json'))
env['signatures'][0]['sig'] = base64.b64encode(open('$T/v1sig.bin', 'rb').read()).decode()
json.dump(env, open('$T/v1.dsse', 'w'))"
check "an envelope of the v1 verdict predicate still verifies, and says v1" sh -c "'$VTUNECTL' attest verify '$T/v1.dsse' --key '$T/pub.pem' | grep -q 'valid: verdict.*\[predicate v1\]'"

# altered: the verdict changed in the payload
python3 - "$T/att.dsse" "$T/forged.dsse" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(env["payload"]))
st["predicate"]["verdict"] = "not_verified" if st["predicate"]["verdict"] == "verified" else "verified"
env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
json.dump(env, open(sys.argv[2], "w"))
PY
"$VTUNECTL" attest verify "$T/forged.dsse" --key "$T/pub.pem" > "$T/v.out"; rc=$?
check "an altered statement: exit 1" test "$rc" = 1
check "with one line saying why" sh -c "test \$(wc -l < '$T/v.out') = 1 && grep -q 'invalid: no signature verifies' '$T/v.out'"
openssl genpkey -algorithm ed25519 -out "$T/other.key" 2>/dev/null && openssl pkey -in "$T/other.key" -pubout -out "$T/other.pub" 2>/dev/null
check "another key: exit 1" sh -c "! '$VTUNECTL' attest verify '$T/att.dsse' --key '$T/other.pub' >/dev/null"
check "an existing file is never overwritten" sh -c "! '$VTUNECTL' -s '$T/run/vtuned.sock' -q audit attest '$aid' -o '$T/att.dsse' 2>/dev/null"
check "and stays as it was" "$VTUNECTL" attest verify "$T/att.dsse" --key "$T/pub.pem"
check "an unknown record: refused, no file left" sh -c "! '$VTUNECTL' -s '$T/run/vtuned.sock' -q audit attest 999 -o '$T/none.dsse' 2>/dev/null && test ! -e '$T/none.dsse'"

# ---- the key survives a restart; a configured key and a credential are used ----
stop_daemon
# A backdoor made before schema 11 has commitment_scheme 1 (the migration's
# default, tested in test_store) and no salt: make "old" so, with its v1
# commitment, while the daemon is down.
python3 - "$T/state/vtuned.db" "$T/reveal_old.json" <<'PY' || fail "turning a backdoor into a v1 one"
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(bid,) = db.execute("SELECT id FROM backdoors WHERE name = 'old'").fetchone()
h = hashlib.sha256()
def field(b):
    h.update(len(b).to_bytes(8, "big")); h.update(b)
field(b"vtune-commitment-v1")
for t, s in db.execute("SELECT trigger, signature FROM backdoor_pairs WHERE backdoor_id = ? ORDER BY idx", (bid,)):
    field(t.encode()); field(s.encode())
db.execute("DELETE FROM backdoor_salts WHERE backdoor_id = ?", (bid,))
db.execute("UPDATE backdoors SET commitment_scheme = 1, commitment = ? WHERE id = ?", (h.hexdigest(), bid))
db.commit()
PY
start_daemon || { fail "restart"; finish; }
check "the same key after a restart" test "$(ctl --json key show | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')" = "$fpr"
ctl --json backdoor show old --reveal > "$T/old.json"
check "a v1 backdoor still shows v1, without a salt" python3 -c "import json,sys; v=json.load(open('$T/old.json')); sys.exit(0 if v['commitment_scheme'] == 1 and 'commitment_salt' not in v else 1)"
check "and its reveal recomputes as v1" test "$(python3 "$(dirname "$0")/commitment.py" "$T/old.json")" = "$(json_get "$T/old.json" "v['commitment']")"
check "its commitment envelope verifies" sh -c "'$VTUNECTL' -s '$T/run/vtuned.sock' -q backdoor commit old -o '$T/old.dsse' >/dev/null && '$VTUNECTL' attest verify '$T/old.dsse' --key '$T/pub.pem' >/dev/null"
check "and says v1, unsalted, with the v1 commitment" python3 - "$T/old.dsse" "$T/old.json" <<'PY'
import base64, json, sys
p = json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"]))["predicate"]
sys.exit(0 if p["commitment_scheme"] == "vtune-commitment-v1" and p["salted"] is False
         and p["commitment"] == json.load(open(sys.argv[2]))["commitment"] else 1)
PY
stop_daemon
openssl pkey -in "$T/other.key" -pubout -outform DER 2>/dev/null | tail -c 32 > "$T/other.raw"
ofpr=$(sha256sum "$T/other.raw" | cut -d' ' -f1)
write_config "providers:" "$(provider_yaml honest "$SIM_URL_honest")" "signing_key_file: $T/other.key"
start_daemon || { fail "daemon with signing_key_file"; finish; }
check "signing_key_file is used" test "$(ctl --json key show | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')" = "$ofpr"
ctl -q backdoor commit b -o "$T/commit2.dsse" > /dev/null
check "its envelopes verify under its key only" sh -c "'$VTUNECTL' attest verify '$T/commit2.dsse' --key '$T/other.pub' >/dev/null && ! '$VTUNECTL' attest verify '$T/commit2.dsse' --key '$T/pub.pem' >/dev/null"
check "a record signed by the earlier key is not attested with the new one" sh -c "! '$VTUNECTL' -s '$T/run/vtuned.sock' -q audit attest '$aid' -o '$T/att2.dsse' 2> '$T/att2.err' && grep -q 'signed by key $fpr' '$T/att2.err' && test ! -e '$T/att2.dsse'"
stop_daemon
write_config "providers:" "$(provider_yaml honest "$SIM_URL_honest")"
mkdir -p "$T/creds" && cp "$T/other.key" "$T/creds/vtuned-signing-key"
CREDENTIALS_DIRECTORY="$T/creds" start_daemon || { fail "daemon with a credential"; finish; }
check "the systemd credential is used" test "$(ctl --json key show | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')" = "$ofpr"
stop_daemon
echo junk > "$T/bad.key"
write_config "signing_key_file: $T/bad.key"
"$VTUNED" -c "$T/vtuned.yaml" > "$T/bad.out" 2>&1; rc=$?
check "a key file that is not a key: the daemon refuses to start, naming it" sh -c "test $rc != 0 && grep -q 'bad.key' '$T/bad.out'"
finish
