#!/usr/bin/env bash
# Time of a conversation's later turns (1,016-token prompts sharing 1,000 tokens with turn 1, 8 new tokens each)
# with and without prefix caching, on the demo model served by 4 ranks (pp=2 x ep=2), release build; the texts
# printed for both runs must be equal. Usage: scripts/prefix-cache-ttft.sh   (after scripts/demo.sh made the model)
set -u
cd "$(dirname "$0")/.."
M=.build/release/moerun
run() {
  local cache=$1 port=$2
  launch/local.sh 4 serve --model .build/demo/deepseek-v3-small --plan pp=2,ep=2 --port $port --prefix-cache-sequences $cache > ${TMPDIR:-/tmp}/ttft-$cache.log 2>&1 &
  for i in $(seq 1 120); do grep -q "ready:" ${TMPDIR:-/tmp}/ttft-$cache.log && break; sleep 1; done
  base=$(python3 -c "print(','.join(str(100 + (i*37)%30000) for i in range(1000)))")
  # turn 1: 1000 prompt tokens; later turns: the same 1000 + 16 new tokens (different each time)
  t1=$(curl -s -o /dev/null -w '%{time_total}' localhost:$port/v1/completions -H 'Content-Type: application/json' -d "{\"model\":\"deepseek-v3-small\",\"prompt\":[$base],\"max_tokens\":1}")
  for k in 1 2 3; do
    extra=$(python3 -c "print(','.join(str(2000 + $k*50 + i) for i in range(16)))")
    t=$(curl -s -o ${TMPDIR:-/tmp}/ttft-$cache-$k.json -w '%{time_total}' localhost:$port/v1/completions -H 'Content-Type: application/json' -d "{\"model\":\"deepseek-v3-small\",\"prompt\":[$base,$extra],\"max_tokens\":8,\"seed\":$k,\"temperature\":0.8}")
    echo "prefix-cache-sequences=$cache turn1=${t1}s turn$((k+1)) (1016 tokens, 8 new tokens)=${t}s $(python3 -c "import json;print(repr(json.load(open('${TMPDIR:-/tmp}/ttft-$cache-$k.json'))['choices'][0]['text'][:40]))")"
  done
  curl -s localhost:$port/metrics | grep prefix_cache | grep -v '^#'
  kill -TERM $(pgrep -f "^mpirun -np 4") ; sleep 3
}
run 8 8101
run 0 8102
