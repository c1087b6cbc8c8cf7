"""The PyTorch peer of bench/train_step.lua: BasicImageClassifier (the original project's model) timed in
PyTorch on the CPU. Prints one line per measurement: `<name> <images per second>`.
    /usr/bin/python3 bench/torch_reference.py [--threads N] [--batch B] [--size S] [--seconds T]
Run by bench/train_step.lua from the same process tree so both use the same machine state."""
import argparse
import time
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicImageClassifier(nn.Module):
    def __init__(self, num_classes=10, in_ch=3, image_size=32, dropout_rate=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 32, 3, padding=1); self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1); self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1); self.bn3 = nn.BatchNorm2d(128)
        self.conv4 = nn.Conv2d(128, 256, 3, padding=1); self.bn4 = nn.BatchNorm2d(256)
        flat = 256 * (image_size // 16) ** 2
        self.fc1 = nn.Linear(flat, 512); self.bn_fc1 = nn.BatchNorm1d(512)
        self.fc2 = nn.Linear(512, 256); self.bn_fc2 = nn.BatchNorm1d(256)
        self.fc3 = nn.Linear(256, num_classes)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x):
        for c, b in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3), (self.conv4, self.bn4)):
            x = F.max_pool2d(F.relu(b(c(x))), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.bn_fc1(self.fc1(x))))
        x = self.dropout(F.relu(self.bn_fc2(self.fc2(x))))
        return self.fc3(x)


def rate(step, batch, seconds):
    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and n >= 5:
            return n * batch / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = BasicImageClassifier(image_size=a.size)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    print("train", rate(train_step, a.batch, a.seconds), flush=True)
    model.eval()
    with torch.no_grad():
        print("eval", rate(lambda: model(x), a.batch, a.seconds), flush=True)
    print("version", torch.__version__, flush=True)


if __name__ == "__main__":
    main()
