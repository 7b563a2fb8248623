"""ONNX Runtime peer for bench/serving_latency.py: the same fine-tuned classifier in ORT.

Runs in its own virtualenv (bench/.onnx-venv, `make bench-onnx-venv`: torch CPU, transformers,
onnx, onnxruntime), never in the project's .venv. It imports no TensorFlow: the TensorFlow
process hands it the exported model's weights as a .npz under PyTorch's names
(bench/serving_latency.py: export_peer_weights), and this worker

1. builds transformers' BertModel (no pooler) from the checkpoint's config.json, loads those
   weights and the dense head on [CLS], checks that every weight was given;
2. exports it to ONNX (torch.onnx.export, TorchScript exporter, dynamic batch and length):
   `fp32` (ORT's own graph optimizations, ORT_ENABLE_ALL), `fp32-fused` (first
   onnxruntime.transformers' optimizer fuses attention/LayerNorm/GELU for BERT, as ORT's docs
   advise), and of each the dynamic int8 variant (`int8`, `int8-fused`:
   onnxruntime.quantization.quantize_dynamic, weights int8 per channel, activations quantized
   per call);
3. serves `BertTokenizerFast` (the checkpoint's; padding to the longest text of a call,
   truncation at max_seq_length) + InferenceSession.run, timed in here, per call.

Driven over stdin/stdout, one JSON object a line, so the TensorFlow process can interleave its
timed blocks with this one's (only one of the two computes at a time):

  <- {"ready": true, "variants": ["fp32", "fp32-fused", "int8", "int8-fused"], "onnxruntime": "1.x", "threads": 2, ...}
  -> {"single": "fp32", "indices": [0, 1, ...]}   <- {"seconds": [...]}      one text a call
  -> {"batches": "int8", "ranges": [[0, 32], ...]} <- {"seconds": 1.23}       batches in a row
  -> {"probabilities": "fp32", "batch": 32}        <- {"probabilities": [[...], ...]}  all texts
  -> {"quit": true}

  bench/.onnx-venv/bin/python bench/onnx_peer.py --checkpoint DIR --weights W.npz \
      --texts test.tsv --max-seq-length 128 --work-dir /tmp/onnx-peer
"""
import argparse
import csv
import json
import os
import sys
import time


def read_texts(path):
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["sentence"] for row in reader]


def build_model(checkpoint, weights_path):
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel

    weights = dict(np.load(weights_path))
    config = BertConfig.from_pretrained(checkpoint)
    head_weight, head_bias = weights.pop("head.weight"), weights.pop("head.bias")

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = BertModel(config, add_pooling_layer=False)
            self.head = torch.nn.Linear(config.hidden_size, head_weight.shape[0])

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            return torch.softmax(self.head(hidden[:, 0]), dim=-1)

    model = Classifier().eval()
    state = {f"bert.{name}": torch.from_numpy(value) for name, value in weights.items()}
    state.update({"head.weight": torch.from_numpy(head_weight),
                  "head.bias": torch.from_numpy(head_bias)})
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit BertModel: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model, config


def export_onnx(model, config, work_dir):
    import torch
    path = os.path.join(work_dir, "classifier_fp32.onnx")
    example = torch.ones((1, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "length"}
    kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
    torch.onnx.export(model, (example, example, torch.zeros_like(example)), path,
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["probabilities"], opset_version=17,
                      dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                    "token_type_ids": axes, "probabilities": {0: "batch"}},
                      **kwargs)
    paths, notes = {"fp32": path}, []
    try:  # BERT fusions (attention, LayerNorm, GELU): what ORT's docs recommend for BERT
        from onnxruntime.transformers import optimizer
        optimized = optimizer.optimize_model(path, model_type="bert",
                                             num_heads=config.num_attention_heads,
                                             hidden_size=config.hidden_size)
        paths["fp32-fused"] = os.path.join(work_dir, "classifier_fp32_fused.onnx")
        optimized.save_model_to_file(paths["fp32-fused"])
    except Exception as error:  # noqa: BLE001  (the unfused model still runs)
        notes.append(f"no BERT fusions ({type(error).__name__}: {error})")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    for name in list(paths):
        quantized = name.replace("fp32", "int8")
        paths[quantized] = os.path.join(work_dir, f"classifier_{quantized}.onnx")
        # Fused ops (com.microsoft domain) defeat the quantizer's shape inference: say float.
        quantize_dynamic(paths[name], paths[quantized], weight_type=QuantType.QInt8,
                         per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return paths, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="config.json and the tokenizer")
    parser.add_argument("--weights", required=True, help=".npz of PyTorch-named weights")
    parser.add_argument("--texts", required=True, help="TSV with a `sentence` column")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work-dir", required=True)
    args = parser.parse_args()
    # The protocol gets the real stdout; whatever the libraries print goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    import numpy as np
    import onnxruntime as ort
    from transformers import BertTokenizerFast

    os.makedirs(args.work_dir, exist_ok=True)
    texts = read_texts(args.texts)
    model, config = build_model(args.checkpoint, args.weights)
    paths, notes = export_onnx(model, config, args.work_dir)
    tokenizer = BertTokenizerFast.from_pretrained(args.checkpoint)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for name, path in paths.items()}

    def predict(session, batch):
        encoded = tokenizer(batch, padding=True, truncation=True,
                            max_length=args.max_seq_length, return_tensors="np")
        return session.run(None, {name: encoded[name].astype(np.int64) for name in
                                  ("input_ids", "attention_mask", "token_type_ids")})[0]

    for session in sessions.values():  # first runs allocate and plan: not timed
        for start in range(0, 64, 8):
            predict(session, texts[start:start + 8])
        for text in texts[:8]:
            predict(session, [text])
    print(json.dumps({"ready": True, "variants": sorted(sessions),
                      "onnxruntime": ort.__version__, "threads": args.threads,
                      "notes": notes}), file=protocol, flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "single" in command:
            session, seconds = sessions[command["single"]], []
            for index in command["indices"]:
                started = time.perf_counter()
                predict(session, [texts[index % len(texts)]])
                seconds.append(time.perf_counter() - started)
            reply = {"seconds": seconds}
        elif "batches" in command:
            session = sessions[command["batches"]]
            started = time.perf_counter()
            for start, end in command["ranges"]:
                predict(session, texts[start:end])
            reply = {"seconds": time.perf_counter() - started}
        elif "probabilities" in command:
            session, size = sessions[command["probabilities"]], int(command.get("batch", 32))
            reply = {"probabilities": np.concatenate(
                [predict(session, texts[start:start + size])
                 for start in range(0, len(texts), size)]).tolist()}
        else:
            break
        print(json.dumps(reply), file=protocol, flush=True)


if __name__ == "__main__":
    main()
