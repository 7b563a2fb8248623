"""PyTorch baseline for bench/training_throughput.py: the plain transformers + torch loop.

Runs in the separate torch virtualenv (bench/.torch-venv, `make bench-torch-venv`), never in
the project's .venv: it imports only torch, transformers and the standard library. The
recipe is the one transformers' docs give for training in native PyTorch:
BertForSequenceClassification on the checkpoint, texts padded to max_length, a shuffled
DataLoader, torch.optim.AdamW with a linear warm-up/decay schedule, forward/backward/step.

It is driven over stdin/stdout, one JSON object a line, so the TensorFlow process can
interleave its timed windows with this one's (only one of the two computes at a time):

  <- {"ready": true, "threads": 2, "first_step_seconds": ...}   after loading and one step
  -> {"steps": 20}     <- {"seconds": 31.2, "loss": 0.41}       K more training steps
  -> {"accuracy": "/path/test.tsv"}   <- {"accuracy": 0.87, "examples": 872}
  -> {"quit": true}

  bench/.torch-venv/bin/python bench/torch_training.py --checkpoint DIR --train FILE \
      --examples 4096 --total-steps 130
"""
import argparse
import csv
import json
import sys
import time


def read_tsv(path, rows=None):
    """GLUE-style TSV (header sentence<TAB>label, no quoting): texts and integer labels."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        records = [(row["sentence"], int(row["label"])) for row in reader]
    records = records[:rows] if rows else records
    return [text for text, _ in records], [label for _, label in records]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--train", required=True, help="train.tsv")
    parser.add_argument("--examples", type=int, required=True, help="its first N rows")
    parser.add_argument("--total-steps", type=int, required=True,
                        help="length of the learning-rate schedule")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import torch
    from transformers import (BertForSequenceClassification, BertTokenizerFast,
                              get_linear_schedule_with_warmup)

    torch.manual_seed(args.seed)
    tokenizer = BertTokenizerFast.from_pretrained(args.checkpoint)

    def encode(texts):
        return tokenizer(texts, padding="max_length", max_length=args.max_seq_length,
                         truncation=True, return_tensors="pt")

    texts, labels = read_tsv(args.train, args.examples)
    encoded = encode(texts)
    dataset = torch.utils.data.TensorDataset(encoded["input_ids"], encoded["attention_mask"],
                                             encoded["token_type_ids"], torch.tensor(labels))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(args.seed))
    model = BertForSequenceClassification.from_pretrained(args.checkpoint, num_labels=2)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(args.total_steps * args.warmup_fraction), args.total_steps)

    def batches():
        while True:  # epochs, reshuffled each time, for as many steps as asked
            yield from loader

    stream = batches()

    def train(steps):
        started = time.perf_counter()
        loss = None
        for _ in range(steps):
            input_ids, attention_mask, token_type_ids, batch_labels = next(stream)
            output = model(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids, labels=batch_labels)
            output.loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            loss = float(output.loss)
        return time.perf_counter() - started, loss

    def accuracy(path):
        texts, labels = read_tsv(path)
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                logits = model(**encode(texts[start:start + 64])).logits
                correct += int((logits.argmax(-1) == torch.tensor(
                    labels[start:start + 64])).sum())
        model.train()
        return correct / len(texts), len(texts)

    first, _ = train(1)
    reply = {"ready": True, "threads": torch.get_num_threads(), "first_step_seconds": first,
             "torch": torch.__version__}
    print(json.dumps(reply), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "steps" in command:
            seconds, loss = train(int(command["steps"]))
            print(json.dumps({"seconds": seconds, "loss": loss}), flush=True)
        elif "accuracy" in command:
            value, count = accuracy(command["accuracy"])
            print(json.dumps({"accuracy": value, "examples": count}), flush=True)
        else:
            break


if __name__ == "__main__":
    main()
