#!/usr/bin/env bash
# End-to-end checks of `harsanyi run` on a tiny Fashion-MNIST study: the study file, the report,
# clear errors, and kill-and-resume (in training and in the analysis) ending with the same file
# as an uninterrupted run. Usage: test_run.sh path/to/harsanyi
set -u
H=${1:?usage: test_run.sh path/to/harsanyi [torchscript-fixture-dir]}
FIXTURE=${2:-}
T=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: Fashion-MNIST is not installed (scripts/setup.sh installs dataset-fashion-mnist)"
  echo "0 passed, 0 failed"
  exit 0
fi

# A tiny study: 4 players (2x2 grid), 3 train + 3 test samples, epochs 0..E.
tiny_study "$T/tiny.toml"
cat >>"$T/tiny.toml" <<'EOF'
[runtime]
threads = 2
forward_batch = 16
EOF

expect 0 "--resume" "run --help documents the options" -- "$H" run --help
expect 0 "train_limit = 1000" "--print-config shows the embedded default" -- "$H" run --print-config
"$H" run "$T/tiny.toml" --print-config >"$T/resolved.toml" 2>/dev/null
"$H" run "$T/resolved.toml" --print-config >"$T/resolved2.toml" 2>/dev/null
cmp -s "$T/resolved.toml" "$T/resolved2.toml" && grep -q "epochs = 3" "$T/resolved.toml" \
  && ok "resolved config round-trips" || bad "resolved config round-trips"
expect 2 "unknown key|grd" "unknown config key" -- "$H" run "$T/tiny.toml" --set players.grd=1
expect 2 "no such|missing|not found|tried" "missing dataset" -- "$H" run "$T/tiny.toml" --set data.train="$T/none" --set output.path="$T/m.h5"
[[ ! -e "$T/m.h5" && ! -e "$T/m.h5.part" ]] && ok "no output after a refused run" || bad "no output after a refused run"

# The uninterrupted reference run, and its report.
expect 0 "epoch" "tiny study runs and reports" -- "$H" run "$T/tiny.toml" --set output.path="$T/a.h5"
[[ $(grep -cE '^ +[0-3] ' "$T/stdout") -eq 4 ]] && ok "report has a row per epoch 0..3" || bad "report has a row per epoch 0..3 ($(cat "$T/stdout"))"
grep -q "time split\|forward passes" "$T/stderr" && ok "run prints the time split" || bad "run prints the time split"
ls "$T/a.h5.ckpt"/epoch_000{0,1,2,3}.pt >/dev/null 2>&1 && ok "a checkpoint per epoch" || bad "a checkpoint per epoch"
"$PY" - "$T/a.h5" <<'EOF' && ok "study file follows the contract" || bad "study file follows the contract"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
n, E, S = int(f.attrs["n_players"]), 4, 6
assert n == 4 and f.attrs["complete"] == 1 and f.attrs["subset_index"] == "bit i = player i"
assert list(f["epochs/epoch"][()]) == [0, 1, 2, 3]
for k in ["and_pos", "and_neg", "or_pos", "or_neg", "and_count", "or_count"]:
    assert f["orders/" + k].shape == (E, S, n + 1), k
assert f["extraction/loss"].shape == (E, S) and np.all(f["extraction/loss"][()] > 0)
assert f["players/name"].shape == (n,)
assert list(f["samples/split"][()]) == [0, 0, 0, 1, 1, 1]
assert f["generalization/jaccard"].shape[0] == E and f["generalization/jaccard"].shape[2] == n + 1
tl = f["epochs/train_loss"][()]
assert np.all(np.isfinite(tl)) and tl[-1] < tl[0], tl  # training lowered the loss
acc = f["epochs/train_acc"][()]
assert np.all((acc >= 0) & (acc <= 1))
EOF
expect 0 "epoch" "report reads the study back" -- "$H" report "$T/a.h5"
expect 2 "exists" "an existing study is refused" -- "$H" run "$T/tiny.toml" --set output.path="$T/a.h5"
expect 2 "complete" "--resume of a complete study is refused" -- "$H" run "$T/tiny.toml" --set output.path="$T/a.h5" --resume

# Same config again: bitwise the same study (determinism).
expect 0 "" "second identical run" -- "$H" run "$T/tiny.toml" --set output.path="$T/b.h5" --quiet
compare_h5 "$T/a.h5" "$T/b.h5" >"$T/cmp" && ok "two runs give the same study" || bad "two runs give the same study: $(cat "$T/cmp")"

# Kill during training, resume; kill during the analysis, resume: the same study. The kills are
# SIGKILLs the program sends itself right after a given step (HARSANYI_FAULT_KILL_AFTER), and one
# at a random moment from outside.
rc=$( { (HARSANYI_FAULT_KILL_AFTER=checkpoint:1 exec "$H" run "$T/tiny.toml" --set output.path="$T/k.h5") >/dev/null 2>&1; echo $?; } 2>/dev/null )
[[ $rc -eq 137 && ! -e "$T/k.h5" && -e "$T/k.h5.ckpt/epoch_0001.pt" ]] && ok "killed in training: no complete-looking study" \
  || bad "killed in training (exit $rc): $(ls "$T")"
rc=$( { (HARSANYI_FAULT_KILL_AFTER=epoch:1 exec "$H" run "$T/tiny.toml" --set output.path="$T/k.h5" --resume) >/dev/null 2>&1; echo $?; } 2>/dev/null )
[[ $rc -eq 137 && ! -e "$T/k.h5" && -e "$T/k.h5.part" ]] && ok "killed in the analysis: no complete-looking study" \
  || bad "killed in the analysis (exit $rc): $(ls "$T")"
expect 0 "incomplete" "report reads the .part of an interrupted study" -- "$H" report "$T/k.h5.part"
[[ $(grep -cE '^ +[0-9]+ ' "$T/stdout") -eq 2 ]] && ok "the interrupted study holds epochs 0 and 1" || bad "interrupted study epochs: $(cat "$T/stdout")"
expect 2 "different study config" "--resume with another config is refused" -- "$H" run "$T/tiny.toml" --set output.path="$T/k.h5" --set interactions.tau_rel=0.1 --resume
expect 0 "" "--resume finishes the study" -- "$H" run "$T/tiny.toml" --set output.path="$T/k.h5" --resume

# Where the solver runs (runtime.solver_device) does not change the study: float64 sgd and optimal
# fits are bitwise the same on the GPU and on the CPU. The runs analyse a.h5's models again
# (--resume on copies of its checkpoints). Without a GPU, "cuda" is refused with the reason.
gpu_count=$("$H" devices 2>/dev/null | sed -n 's/^GPUs usable: \([0-9]*\).*/\1/p')
solver_run() {  # solver_run NAME [--set ...]: a.h5's models analysed again into NAME.h5
  rm -rf "$T/$1.h5" "$T/$1.h5.part" "$T/$1.h5.ckpt"
  cp -r "$T/a.h5.ckpt" "$T/$1.h5.ckpt"
  local name=$1
  shift
  "$H" run "$T/tiny.toml" --set output.path="$T/$name.h5" --resume --no-report "$@"
}
expect 0 "solver on the CPU" "runtime.solver_device = cpu says where the solver runs" -- solver_run scpu --set runtime.solver_device=cpu
compare_h5 "$T/a.h5" "$T/scpu.h5" >"$T/cmp" && ok "solver on the CPU: the same study" || bad "solver_device = cpu: $(cat "$T/cmp")"
expect 0 "solver on the CPU" "auto keeps the optimal solver on the CPU at n = 4" -- solver_run oauto --set interactions.solver=optimal
if [[ ${gpu_count:-0} -gt 0 ]]; then
  expect 0 "solver on the GPU" "runtime.solver_device = cuda runs the solver on the GPU" -- solver_run sgpu --set runtime.solver_device=cuda
  compare_h5 "$T/a.h5" "$T/sgpu.h5" >"$T/cmp" && ok "sgd on the GPU: the same study" || bad "sgd solver_device = cuda: $(cat "$T/cmp")"
  expect 0 "solver on the GPU" "runtime.solver_device = cuda runs the optimal solver on the GPU" -- solver_run ogpu --set interactions.solver=optimal --set runtime.solver_device=cuda
  compare_h5 "$T/oauto.h5" "$T/ogpu.h5" >"$T/cmp" && ok "optimal on the GPU: the same study" || bad "optimal solver_device = cuda: $(cat "$T/cmp")"
else
  expect 2 "runtime.solver_device.*no usable GPU" "runtime.solver_device = cuda without a GPU is refused" -- solver_run sgpu --set runtime.solver_device=cuda
  [[ ! -e "$T/sgpu.h5" ]] && ok "the refused run wrote no study" || bad "the refused run wrote $T/sgpu.h5"
fi
compare_h5 "$T/a.h5" "$T/k.h5" >"$T/cmp" && ok "killed twice and resumed: the same study" || bad "killed and resumed: $(cat "$T/cmp")"
"$H" run "$T/tiny.toml" --set output.path="$T/x.h5" --quiet --no-report &
pid=$!
sleep 1.5
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[[ ! -e "$T/x.h5" ]] || mv "$T/x.h5" "$T/x.h5.done"  # finished before the kill: nothing to resume
if [[ -e "$T/x.h5.done" ]]; then
  compare_h5 "$T/a.h5" "$T/x.h5.done" >"$T/cmp" && ok "killed at a random time (after the end)" || bad "random kill: $(cat "$T/cmp")"
else
  "$H" run "$T/tiny.toml" --set output.path="$T/x.h5" --resume --quiet --no-report
  compare_h5 "$T/a.h5" "$T/x.h5" >"$T/cmp" && ok "killed at a random time and resumed: the same study" || bad "random kill: $(cat "$T/cmp")"
fi

# A TorchScript study: per-epoch files saved by PyTorch (epochs 0 and 3, from the file names) on
# an 8x8 IDX dataset written here, optimal solver, values and interactions stored.
if [[ -n $FIXTURE ]]; then
  "$PY" - "$T" <<'EOF'
import gzip, struct, sys, numpy as np
rng = np.random.default_rng(7)
for split, count in (("train", 30), ("t10k", 20)):
    images = rng.integers(0, 256, size=(count, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, size=count, dtype=np.uint8)
    with gzip.open(f"{sys.argv[1]}/tiny8-{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, count, 8, 8) + images.tobytes())
    with open(f"{sys.argv[1]}/tiny8-{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, count) + labels.tobytes())
EOF
  cat >"$T/ts.toml" <<EOF
[data]
train = "$T/tiny8-train"
test = "$T/tiny8-t10k"
train_limit = 0
[model]
arch = "torchscript"
checkpoints = "$FIXTURE/epoch_*.pt"
[players]
grid = [2, 2]
[samples]
train_indices = [0, 5]
test_indices = [1, 2, 3]
[interactions]
solver = "optimal"
store = ["values", "interactions"]
[output]
path = "$T/ts.h5"
EOF
  expect 0 "epoch" "TorchScript study runs" -- "$H" run "$T/ts.toml"
  "$PY" - "$T/ts.h5" <<'EOF' && ok "TorchScript study: epochs from file names, bound, stored values" || bad "TorchScript study file"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert list(f["epochs/epoch"][()]) == [0, 3], f["epochs/epoch"][()]
assert f["values"].shape == (2, 5, 16) and f["interactions/and"].shape == (2, 5, 16)
loss, bound = f["extraction/loss"][()], f["extraction/bound"][()]
assert np.all(bound <= loss * (1 + 1e-12)) and np.all(loss - bound <= 1e-3 * loss + 1e-12), (loss, bound)
v = f["values"][()]
assert np.all(v[:, :, 0] == 0)  # gt-log-odds-v0: v(empty) = 0
# universal matching with the stored (folded) interactions: v + q = AND part + OR part, |q| <= b
a, o = f["interactions/and"][()], f["interactions/or"][()]
S = np.arange(16)
sub = (S[:, None] & S[None, :]) == S[None, :]       # [S, T]: T subset of S
hit = ((S[:, None] & S[None, :]) != 0) & (S[None, :] != 0)  # [S, T]: T non-empty, meets S
rec = a @ sub.T + o[..., :1] + o @ hit.T
qmax = 0.04 * np.abs(v[..., 15] - v[..., 0])
assert np.all(np.abs(rec - v) <= qmax[..., None] * (1 + 1e-9) + 1e-9), np.abs(rec - v).max()
EOF
fi

# A tabular study: CSV with a named label column (test split taken from the file), feature
# players with a mean baseline, an MLP trained with Adam on noisy labels, AND-only on the
# predicted label.
"$PY" - "$T" <<'EOF'
import sys, numpy as np
rng = np.random.default_rng(3)
x = rng.normal(size=(200, 5))
y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
with open(f"{sys.argv[1]}/table.csv", "w") as f:
    f.write("age,dose,weight,label,height,noise\n")
    for row, lab in zip(x, y):
        f.write(",".join(f"{v:.6f}" for v in row[:3]) + f",{lab}," + ",".join(f"{v:.6f}" for v in row[3:]) + "\n")
EOF
cat >"$T/csv.toml" <<EOF
[data]
format = "csv"
train = "$T/table.csv"
test = ""
label_column = "label"
label_noise = 0.1
[model]
arch = "mlp"
[train]
epochs = 4
batch = 16
optimizer = "adam"
lr = 0.01
[players]
kind = "features"
features = ["age", "dose", "weight", "height"]
[baseline]
kind = "mean"
[samples]
train = 4
test = 4
[interactions]
mode = "and"
label = "predicted"
[output]
path = "$T/csv.h5"
EOF
expect 0 "epoch" "tabular study runs" -- "$H" run "$T/csv.toml"
"$PY" - "$T/csv.h5" <<'EOF' && ok "tabular study: feature players, AND only, losses" || bad "tabular study file"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
names = [n.decode() if isinstance(n, bytes) else n for n in f["players/name"][()]]
assert names == ["age", "dose", "weight", "height"], names
assert "or_pos" not in f["orders"] and f["orders/and_pos"].shape == (5, 8, 5)
assert f.attrs["mode"] == "and" and f.attrs["label"] == "predicted"
assert "mean" in f.attrs["baseline"], f.attrs["baseline"]
assert np.all(np.isfinite(f["epochs/test_loss"][()]))
EOF

# A diverging model gets a message naming the cause, and the output does not look complete.
expect 2 "diverged|not finite" "diverging training is reported" -- "$H" run "$T/tiny.toml" --set output.path="$T/nan.h5" --set train.lr=1e6 --set train.epochs=2
[[ ! -e "$T/nan.h5" ]] && ok "no study after divergence" || bad "no study after divergence"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
