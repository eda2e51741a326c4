#!/usr/bin/env python3
"""Snapshot / restore of the Kubernetes-owned iptables state (chains named KUBE-* and CNI-*), IPv4 and IPv6.

ipt_snapshot.py save DIR      iptables-save / ip6tables-save / `nft list tables` -> DIR
ipt_snapshot.py restore DIR   make every KUBE-*/CNI-* chain, and every rule jumping to one, exactly what DIR says:
                              chains created since are removed (with the jumps to them), chains removed since
                              (e.g. by `kube-proxy --cleanup`) are put back with their rules and jumps at their old
                              positions, changed ones are rewritten; ip/ip6 nat|filter|mangle tables that did not
                              exist before and are empty now are deleted. Nothing else is touched.
"""

import os
import re
import shlex
import subprocess
import sys

OURS = re.compile(r"^(KUBE-|CNI-)")
BUILTIN = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
TABLES = ("mangle", "nat", "filter")


def parse(text):
    """iptables-save text -> {table: {"chains": [names...], "rules": {chain: [rule-args-str...]}}}"""
    out, t = {}, None
    for line in text.splitlines():
        if line.startswith("*"):
            t = line[1:]
            out[t] = {"chains": [], "rules": {}}
        elif line.startswith(":") and t:
            name = line[1:].split()[0]
            out[t]["chains"].append(name)
            out[t]["rules"].setdefault(name, [])
        elif line.startswith("-A ") and t:
            chain, rest = line[3:].split(" ", 1) if " " in line[3:] else (line[3:], "")
            out[t]["rules"].setdefault(chain, []).append(rest)
    return out


def target(rule):
    a = shlex.split(rule)
    for flag in ("-j", "-g"):
        if flag in a:
            return a[a.index(flag) + 1]
    return None


def save_cmd(fam):
    return ["iptables-save"] if fam == 4 else ["ip6tables-save"]


def run(fam, *args):
    cmd = ["iptables" if fam == 4 else "ip6tables", "-w"] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print("  FAILED:", " ".join(shlex.quote(c) for c in cmd), r.stderr.strip(), file=sys.stderr)
    return r.returncode == 0


def restore_family(fam, before_text):
    before = parse(before_text)
    now = parse(subprocess.run(save_cmd(fam), capture_output=True, text=True).stdout)
    changes = 0
    for t in TABLES:
        b = before.get(t, {"chains": [], "rules": {}})
        n = now.get(t, {"chains": [], "rules": {}})
        if t not in now and t not in before:
            continue
        bours = [c for c in b["chains"] if OURS.match(c)]
        nours = [c for c in n["chains"] if OURS.match(c)]
        # 1. jumps (in any chain) that are not in the snapshot -> delete
        for chain, rules in n["rules"].items():
            for r in rules:
                tg = target(r)
                if tg and OURS.match(tg) and r not in b["rules"].get(chain, []):
                    if run(fam, "-t", t, "-D", chain, *shlex.split(r)):
                        changes += 1
        # 2. our chains that did not exist -> flush + delete
        for c in nours:
            if c not in bours:
                run(fam, "-t", t, "-F", c)
                changes += run(fam, "-t", t, "-X", c)
        # 3. our chains that existed -> (re)create and set rules exactly as before
        for c in bours:
            if c not in nours:
                run(fam, "-t", t, "-N", c)
                changes += 1
            if c not in nours or n["rules"].get(c, []) != b["rules"].get(c, []):
                run(fam, "-t", t, "-F", c)
                for r in b["rules"].get(c, []):
                    tg = target(r)
                    if not (tg and OURS.match(tg)) or tg in bours:
                        run(fam, "-t", t, "-A", c, *shlex.split(r))
                changes += 1
        # 4. jumps from other chains into ours that the snapshot has but are missing now -> reinsert at the old index
        cur = parse(subprocess.run(save_cmd(fam), capture_output=True, text=True).stdout).get(t, {"rules": {}})
        for chain, rules in b["rules"].items():
            if OURS.match(chain):
                continue
            for i, r in enumerate(rules):
                tg = target(r)
                if tg and OURS.match(tg) and r not in cur["rules"].get(chain, []):
                    pos = min(i + 1, len(cur["rules"].get(chain, [])) + 1)
                    if run(fam, "-t", t, "-I", chain, str(pos), *shlex.split(r)):
                        cur["rules"].setdefault(chain, []).insert(pos - 1, r)
                        changes += 1
    return changes


def nft_tables():
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return {line.strip() for line in r.stdout.splitlines() if line.startswith("table")}


def main():
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "save":
        os.makedirs(d, exist_ok=True)
        for fam in (4, 6):
            open(f"{d}/ipt{fam}.save", "w").write(subprocess.run(save_cmd(fam), capture_output=True, text=True).stdout)
        open(f"{d}/nft_tables.save", "w").write("\n".join(sorted(nft_tables())) + "\n")
        return
    total = 0
    for fam in (4, 6):
        total += restore_family(fam, open(f"{d}/ipt{fam}.save").read())
    before_tables = {line.strip() for line in open(f"{d}/nft_tables.save") if line.strip()}
    for tb in sorted(nft_tables() - before_tables):
        fam, name = tb.split()[1:3]
        if fam in ("ip", "ip6") and name in TABLES:
            listing = subprocess.run(["nft", "list", "table", fam, name], capture_output=True, text=True).stdout
            rules = [
                line
                for line in listing.splitlines()
                if line.strip() and not line.strip().startswith(("table ", "chain ", "}", "type "))
            ]
            if not rules:
                subprocess.run(["nft", "delete", "table", fam, name])
                total += 1
    print(f"iptables KUBE-*/CNI-* state restored to snapshot ({total} changes)")


main()
