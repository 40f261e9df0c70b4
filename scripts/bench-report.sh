#!/usr/bin/env bash
# Summarises `go test -bench` output (several -count runs) into a small
# Markdown report: median MB/s per benchmark and the envelope/raw AES-GCM
# ratios, all from the same run.
set -euo pipefail
in=${1:?usage: bench-report.sh bench.txt}

awk '
/^ *cost_bench_test.go:[0-9]+: *$/ { table = 1; next }
table && /^ *\|/ { sub(/^ +/, ""); tables = tables $0 "\n"; next }
table && /^ *CLI: / { sub(/^ +/, ""); tables = tables $0 "\n\n"; next }
table && /^ *$/ { next }
table && !/^ *\|/ { table = 0; tables = tables "\n" }
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 2; i <= NF; i++) if ($(i+1) == "MB/s") { v[name] = v[name] " " $i }
	if (name ~ /LadderVsFFmpeg|MarkedVsFFmpeg|JobOverhead|JobsPerHour|EmbedShare|EdgeLoad/) {
		line = ""
		for (i = 3; i < NF; i += 2) line = line sprintf("%s %s, ", $i, $(i+1))
		ladder[name] = line
	}
}
function median(s,    a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
END {
	printf "# abseal benchmark report\n\n"
	printf "| benchmark | median MB/s |\n|---|---:|\n"
	n = 0
	for (k in v) names[++n] = k
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (names[j] < names[i]) { t = names[i]; names[i] = names[j]; names[j] = t }
	for (i = 1; i <= n; i++) { m[names[i]] = median(v[names[i]]); printf "| %s | %.1f |\n", names[i], m[names[i]] }
	printf "\n"
	for (i = 1; i <= n; i++) {
		k = names[i]
		if (k !~ /^Benchmark(Seal|Open)\//) continue
		raw = k; sub(/^Benchmark/, "BenchmarkRawAESGCM", raw)
		if (raw in m) printf "envelope %s / raw AES-256-GCM: **%.2f** (goal >= 0.8)\n", substr(k, 10), m[k] / m[raw]
	}
	for (k in ladder) printf "\n%s: %s\n", k, ladder[k]
	if (tables != "") printf "\nThe marked A/B job against the ffmpeg CLI (whole processes, medians of 3 alternating runs):\n\n%s", tables
}' "$in"
