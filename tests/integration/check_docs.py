#!/usr/bin/env python3
"""check_docs.py VTUNECTL SRCDIR — the documentation names exactly vtunectl's commands and flags.

The truth is vtunectl's command table, read through the hidden `vtunectl __commands` dump
(one line per command: WORDS<TAB>ARG<TAB>FLAGS, an alias after '|'; words "-" for the
global options).  Checked against it:

- `vtunectl --help` and every `vtunectl CMD [SUB] --help` (generated from the same table,
  checked all the same);
- man/vtunectl.1 SYNOPSIS: one entry (between .br) per command, naming every flag of the
  command (by its name or its alias) and no other; the global entry names -s, --json, -q;
- man/vtunectl.1 OPTIONS names every global option; COMMANDS has an item per command;
- README.md "Control commands" block: every command with every flag, and nothing else;
- everywhere in README.md and the three man pages: a `vtunectl WORDS… --flag` that is
  written out must name a command that exists and flags that command has;
- vtuned(8) PROTOCOL names every method, notification and error code of ctl/protocol.h
  (the one protocol header) and none it lacks;
- vtunectl(1) JSON OUTPUT and ctl/schema/: a schema per command, installed, an item per
  command in the section's Commands list, and every key of the schemas named there;
- an example `socket_group:` (vtuned.yaml(5), conf/vtuned.yaml) is the group that
  systemd/vtuned.sysusers creates.

Prints one line per disagreement and exits 1 when there is any; 0 otherwise.
"""
import json
import os
import re
import subprocess
import sys


def load_table(vtunectl):
    out = subprocess.run([vtunectl, "__commands"], check=True, capture_output=True, text=True).stdout
    cmds, glob = {}, {}
    for line in out.splitlines():
        words, arg, flags = line.split("\t")
        fl = {}
        for f in flags.split():
            names = f.split("|")
            fl[names[0]] = set(names)
        if words == "-":
            glob = fl
        else:
            cmds[words] = {"arg": None if arg == "-" else arg, "flags": fl}
    return cmds, glob


def roff_text(s):
    """Roff source to plain words: macros, fonts, quotes and escapes dropped."""
    s = re.sub(r"^\.(B|I|R|BR|RB|BI|IB|IR|RI)\s+", "", s, flags=re.M)
    s = re.sub(r"\\f[BIRP]", "", s)
    s = s.replace("\\-", "-").replace('"', " ").replace("\\(em", " ").replace("\\ ", " ")
    return s


FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)")


def flags_in(text):
    return {m.group(1) for m in FLAG.finditer(text)}


def command_words(tokens, cmds):
    """The longest command of the table that tokens start with, or the unmatched words."""
    words = []
    for t in tokens:
        if not re.fullmatch(r"[a-z]+", t):
            break
        words.append(t)
    for n in range(len(words), 0, -1):
        if " ".join(words[:n]) in cmds:
            return " ".join(words[:n]), True
    return " ".join(words[:2]), False


def compare(where, name, named, table_flags, problems):
    """named: flags a document gives for a command; table_flags: {canonical: {names}}."""
    allowed = set().union(*table_flags.values()) if table_flags else set()
    for canon, names in table_flags.items():
        if not names & named:
            problems.append(f"{where}: '{name}' lacks {canon}")
    for f in sorted(named - allowed):
        problems.append(f"{where}: '{name}' names {f}, which vtunectl does not have")


def check_mentions(where, text, cmds, glob, problems):
    """Every written-out `vtunectl WORDS [--flag …]` names a command and its flags."""
    allglob = set().union(*glob.values())
    for m in re.finditer(r"vtunectl((?:[ \t]+[^\s`'|)(,;]+)+)", text):
        toks = [t for t in m.group(1).split()]
        # skip global options and their values
        while toks and toks[0].startswith("-"):
            t = toks.pop(0)
            if t in ("-s", "--socket") and toks:
                toks.pop(0)
        if not toks or not re.fullmatch(r"[a-z]+", toks[0]):
            continue  # "vtunectl COMMAND", "vtunectl(1)", prose
        name, known = command_words(toks, cmds)
        groups = {c.split()[0] for c in cmds}
        if not known:
            if toks[0] in groups and (len(toks) == 1 or not re.fullmatch(r"[a-z]+", toks[1])):
                continue  # a group named alone ("vtunectl dataset --help")
            if toks[0] in groups or toks[0] in ("help",):
                if toks[0] != "help":
                    problems.append(f"{where}: 'vtunectl {name}' is not a command")
            continue
        rest = " ".join(toks[len(name.split()):])
        allowed = set().union(*cmds[name]["flags"].values()) if cmds[name]["flags"] else set()
        for f in sorted(flags_in(rest) - allowed - allglob):
            problems.append(f"{where}: 'vtunectl {name}' has no flag {f}")


def check_man(src, cmds, glob, problems):
    path = f"{src}/man/vtunectl.1"
    page = open(path, encoding="utf-8").read()
    secs = dict(re.findall(r"^\.SH (\S+)\n(.*?)(?=^\.SH |\Z)", page, flags=re.M | re.S))
    seen = set()
    for entry in secs.get("SYNOPSIS", "").split("\n.br\n"):
        text = roff_text(entry)
        toks = re.sub(r"[\[\]|]", " ", text).split()
        if not toks or toks[0] != "vtunectl":
            problems.append(f"{path}: SYNOPSIS entry without 'vtunectl': {text.strip()[:40]}")
            continue
        named = flags_in(text)
        if len(toks) > 1 and toks[1].startswith("-"):
            for g in ("--socket", "--json", "--quiet"):
                if not glob[g] & named:
                    problems.append(f"{path}: SYNOPSIS lacks the global option {g}")
            continue
        name, known = command_words(toks[1:], cmds)
        if not known:
            problems.append(f"{path}: SYNOPSIS names 'vtunectl {name}', which is not a command")
            continue
        if name in seen:
            problems.append(f"{path}: SYNOPSIS has 'vtunectl {name}' twice")
        seen.add(name)
        compare(f"{path} SYNOPSIS", name, named, cmds[name]["flags"], problems)
    for name in cmds:
        if name not in seen:
            problems.append(f"{path}: SYNOPSIS lacks 'vtunectl {name}'")
    opts = flags_in(roff_text(secs.get("OPTIONS", "")))
    compare(f"{path} OPTIONS", "global options", opts, glob, problems)
    items = [roff_text(t).split("\n")[0] for t in re.split(r"^\.TP\n", secs.get("COMMANDS", ""), flags=re.M)[1:]]
    for name in cmds:
        if not any(re.match(r"\s*" + re.escape(name) + r"\b", i) for i in items):
            problems.append(f"{path}: COMMANDS has no item for '{name}'")
    allflags = set().union(*glob.values(), *(set().union(*c["flags"].values()) for c in cmds.values() if c["flags"]))
    for f in sorted(flags_in(roff_text(page)) - allflags):
        problems.append(f"{path}: names {f}, which no vtunectl command has")


def schema_keys(node, out):
    """Every property name a JSON Schema defines (not inside free-form values)."""
    if isinstance(node, dict):
        for k, v in node.get("properties", {}).items():
            out.add(k)
            schema_keys(v, out)
        for k, v in node.items():
            if k != "properties":
                schema_keys(v, out)
    elif isinstance(node, list):
        for v in node:
            schema_keys(v, out)


def check_json_output(src, cmds, problems):
    """vtunectl(1) JSON OUTPUT and ctl/schema/: one schema file per command (and defs.json,
    error.json, nothing else), each installed (ctl/local.mk), each command an item of the
    section's Commands list, and every key any schema defines named in the section."""
    path = f"{src}/man/vtunectl.1"
    page = open(path, encoding="utf-8").read()
    sec = re.search(r"^\.SH JSON OUTPUT\n(.*?)(?=^\.SH |\Z)", page, flags=re.M | re.S)
    if not sec:
        problems.append(f"{path}: no JSON OUTPUT section")
        return
    body = sec.group(1)
    sub = re.search(r"^\.SS Commands\n(.*?)(?=^\.SS |\Z)", body, flags=re.M | re.S)
    items = [roff_text(t).split("\n")[0].strip()
             for t in re.split(r"^\.TP(?: \d+)?\n", sub.group(1) if sub else "", flags=re.M)[1:]]
    for name in cmds:
        if name not in items:
            problems.append(f"{path}: JSON OUTPUT Commands has no item for '{name}'")
    for i in items:
        if i not in cmds:
            problems.append(f"{path}: JSON OUTPUT Commands has '{i}', which is not a command")
    sdir = f"{src}/ctl/schema"
    try:
        files = sorted(f for f in os.listdir(sdir) if f.endswith(".json"))
    except OSError:
        problems.append(f"{sdir}: missing")
        return
    want = {c.replace(" ", "-") + ".json" for c in cmds} | {"defs.json", "error.json"}
    for f in sorted(want - set(files)):
        problems.append(f"{sdir}: no {f} (the schema of '{f[:-5].replace('-', ' ')}')")
    for f in sorted(set(files) - want):
        problems.append(f"{sdir}/{f}: no such command")
    mk = open(f"{src}/ctl/local.mk", encoding="utf-8").read()
    for f in files:
        if f"ctl/schema/{f}" not in mk:
            problems.append(f"ctl/local.mk: dist_ctlschema_DATA lacks ctl/schema/{f}")
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", roff_text(body).replace("\\(dq", " ")))
    keys = set()
    for f in files:
        try:
            schema_keys(json.load(open(f"{sdir}/{f}", encoding="utf-8")), keys)
        except ValueError as e:
            problems.append(f"{sdir}/{f}: not JSON: {e}")
    for k in sorted(keys - words):
        problems.append(f"{path}: JSON OUTPUT does not name the key {k} (ctl/schema)")


def check_readme(src, cmds, glob, problems):
    path = f"{src}/README.md"
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^## Control commands\n.*?^```\n(.*?)^```", text, flags=re.M | re.S)
    if not m:
        problems.append(f"{path}: no 'Control commands' block")
        return
    seen = set()
    lines = []
    for line in m.group(1).splitlines():
        if lines and re.match(r"\s+[\[-]", line):  # a synopsis continued on the next line
            lines[-1] += " " + re.split(r"\s{3,}", line.strip())[0]
        else:
            lines.append(line)
    for line in lines:
        if line.startswith("vtunectl "):
            named = flags_in(line)
            for g in ("--socket", "--json", "--quiet"):
                if not glob[g] & named:
                    problems.append(f"{path}: the synopsis lacks the global option {g}")
            continue
        body = re.split(r"\s{3,}", line.strip())[0]  # drop the right-hand description
        if not body:
            continue
        group = body.split()[0]
        has_subs = any(c.startswith(group + " ") for c in cmds)
        for part in re.split(r"\s+\|\s+", body):
            toks = part.split()
            if toks[0] != group:
                toks = [group] + toks
            name = " ".join(toks[:2]) if has_subs else group
            if name not in cmds:
                problems.append(f"{path}: 'Control commands' names '{name}', which is not a command")
                continue
            seen.add(name)
            compare(f"{path} Control commands", name, flags_in(part), cmds[name]["flags"], problems)
    for name in cmds:
        if name not in seen:
            problems.append(f"{path}: 'Control commands' lacks '{name}'")


def check_help(vtunectl, cmds, glob, problems):
    """`vtunectl --help` and each `vtunectl CMD --help` show the command with all its flags."""
    main = subprocess.run([vtunectl, "--help"], capture_output=True, text=True).stdout
    entries, cur = {}, None
    for line in main.split("Commands:\n", 1)[-1].split("\nOptions", 1)[0].splitlines():
        if re.match(r"  [a-z]", line):
            toks = line.split()
            cur, _ = command_words(toks, cmds)
            entries[cur] = line
        elif cur and re.match(r"\s+[\[-]", line):
            entries[cur] += " " + line.strip()
    for name, c in cmds.items():
        if name not in entries:
            problems.append(f"vtunectl --help: lacks '{name}'")
        else:
            compare("vtunectl --help", name, flags_in(entries[name]), c["flags"], problems)
        out = subprocess.run([vtunectl] + name.split() + ["--help"], capture_output=True, text=True).stdout
        usage = out.split("\n\n", 1)[0]
        if not usage.startswith("usage: vtunectl") or f"] {name}" not in usage:
            problems.append(f"vtunectl {name} --help: its usage line is not about '{name}'")
        compare(f"vtunectl {name} --help", name, flags_in(usage) - {"-s", "--json", "-q"}, c["flags"], problems)
    for g in glob:
        if g not in main:
            problems.append(f"vtunectl --help: lacks the global option {g}")


def check_protocol(src, problems):
    """vtuned(8) CONTROL PROTOCOL names every method, notification and error code of ctl/protocol.h,
    and no method that is not there."""
    hdr = open(f"{src}/ctl/protocol.h", encoding="utf-8").read()
    methods = set(re.findall(r'#define CTL_[MN]_\w+\s+"([^"]+)"', hdr))
    codes = set(re.findall(r"#define CTL_ERR_\w+\s+(-\d+)", hdr))
    path = f"{src}/man/vtuned.8"
    page = open(path, encoding="utf-8").read()
    sec = re.search(r"^\.SH CONTROL PROTOCOL\n(.*?)(?=^\.SH |\Z)", page, flags=re.M | re.S)
    text = roff_text(sec.group(1) if sec else "").replace("\\(dq", " ")
    for m in sorted(methods):
        if not re.search(r"(?<![\w.])" + re.escape(m) + r"(?![\w.])", text):
            problems.append(f"{path}: PROTOCOL does not name {m} (ctl/protocol.h)")
    for c in sorted(codes):
        if c not in text:
            problems.append(f"{path}: PROTOCOL does not name error code {c} (ctl/protocol.h)")
    for m in sorted(set(re.findall(r"\b((?:status|dataset|backdoor|job|verify|audit|schedule)\.[a-z]+)\b", text))):
        if m not in methods:
            problems.append(f"{path}: PROTOCOL names {m}, which ctl/protocol.h does not have")
    for c in sorted(set(re.findall(r"-32\d\d\d", text)) - codes):
        problems.append(f"{path}: PROTOCOL names error code {c}, which ctl/protocol.h does not have")


def check_socket_group(src, problems):
    """An example socket_group is the group systemd-sysusers creates."""
    users = re.findall(r"^[ug]\s+(\S+)", open(f"{src}/systemd/vtuned.sysusers").read(), flags=re.M)
    for doc in ("man/vtuned.yaml.5", "conf/vtuned.yaml"):
        for g in re.findall(r"^#?socket_group:\s*(\S+)", open(f"{src}/{doc}").read(), flags=re.M):
            if g not in users:
                problems.append(f"{doc}: example socket_group '{g}' is not the group "
                                f"systemd/vtuned.sysusers creates ({', '.join(users)})")


def main():
    vtunectl, src = sys.argv[1], sys.argv[2]
    cmds, glob = load_table(vtunectl)
    problems = []
    check_help(vtunectl, cmds, glob, problems)
    check_man(src, cmds, glob, problems)
    check_json_output(src, cmds, problems)
    check_readme(src, cmds, glob, problems)
    check_protocol(src, problems)
    check_socket_group(src, problems)
    for doc in ("README.md", "man/vtunectl.1", "man/vtuned.8", "man/vtuned.yaml.5"):
        text = open(f"{src}/{doc}", encoding="utf-8").read()
        if doc.startswith("man/"):
            text = roff_text(text)
        # a command continued on the next line ("… \" in a shell block)
        text = re.sub(r"\\\n\s*", " ", text)
        check_mentions(doc, text, cmds, glob, problems)
    for p in problems:
        print(p)
    print(f"# {len(cmds)} commands checked; {len(problems)} disagreement(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
