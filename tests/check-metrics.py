#!/usr/bin/env python3
"""check-metrics.py: parse `padctl metrics` output with the Prometheus client library's
own text parser and check it: every family has its documented type, no sample is given
twice, the wait histogram's buckets are cumulative and end at +Inf with _count, and each
SAMPLE=VALUE argument (SAMPLE as name{label="v",...}, labels sorted) is there with that
value. With --down, the file must hold paddd_up 0 and nothing else (paddd did not answer).
Exit 0, 1 with what is wrong, or 77 when python3 cannot import prometheus_client.

Usage: check-metrics.py [--down] FILE [SAMPLE=VALUE...]"""
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print(f"check-metrics: python3 cannot import prometheus_client ({e}): skipped")
    sys.exit(77)

GAUGES = ["paddd_up", "paddd_max_helpers", "paddd_in_use", "paddd_leases", "paddd_waiting",
          "paddd_node_max_helpers", "paddd_node_in_use"]
COUNTERS = ["paddd_grants", "paddd_helpers_granted", "paddd_node_grants",
            "paddd_node_helpers_granted", "paddd_user_grants", "paddd_user_helpers_granted"]


def fail(msg):
    print(f"check-metrics: {msg}")
    sys.exit(1)


def key(name, labels):
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def read(path):
    types, samples, buckets = {}, {}, []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for fam in text_string_to_metric_families(text):
        if fam.name in types:
            fail(f"family {fam.name} given twice")
        types[fam.name] = fam.type
        for s in fam.samples:
            k = key(s.name, s.labels)
            if k in samples:
                fail(f"sample {k} given twice")
            samples[k] = s.value
            if s.name == "paddd_wait_seconds_bucket":
                buckets.append((float(s.labels["le"]), s.value))
    return types, samples, buckets


def check_types(types):
    for name in GAUGES:
        if types.get(name) != "gauge":
            fail(f"{name} is {types.get(name)}, not a gauge")
    for name in COUNTERS:
        # The parser names a counter's family without its _total suffix.
        t = types.get(name, types.get(name + "_total"))
        if t != "counter":
            fail(f"{name}_total is {t}, not a counter")
    if types.get("paddd_wait_seconds") != "histogram":
        fail(f"paddd_wait_seconds is {types.get('paddd_wait_seconds')}, not a histogram")


def check_histogram(samples, buckets):
    if not buckets or not math.isinf(buckets[-1][0]):
        fail("paddd_wait_seconds has no +Inf bucket last")
    for (le0, c0), (le1, c1) in zip(buckets, buckets[1:]):
        if le1 <= le0 or c1 < c0:
            fail(f"buckets not ascending and cumulative: le {le0} {c0}, le {le1} {c1}")
    if buckets[-1][1] != samples.get("paddd_wait_seconds_count"):
        fail("the +Inf bucket is not paddd_wait_seconds_count")
    if "paddd_wait_seconds_sum" not in samples:
        fail("no paddd_wait_seconds_sum")


def check_down(path):
    types, samples, _ = read(path)
    if types != {"paddd_up": "gauge"} or samples != {"paddd_up": 0}:
        fail(f"paddd down, yet {path} holds {samples}")
    print("check-metrics: paddd_up 0 alone")


def main():
    if len(sys.argv) < 2:
        fail("usage: check-metrics.py [--down] FILE [SAMPLE=VALUE...]")
    if sys.argv[1] == "--down":
        check_down(sys.argv[2])
        return
    types, samples, buckets = read(sys.argv[1])
    check_types(types)
    check_histogram(samples, buckets)
    for arg in sys.argv[2:]:
        name, _, want = arg.rpartition("=")
        if name not in samples:
            fail(f"no sample {name}")
        if abs(samples[name] - float(want)) > 1e-6:
            fail(f"{name} is {samples[name]}, the bus says {want}")
    print(f"check-metrics: {len(samples)} samples in {len(types)} families, "
          f"{len(sys.argv) - 2} values as on the bus")


main()
