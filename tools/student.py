"""The embedding network (the "student"): a small CNN over a log-mel patch, distilled from
musicnn's MSD and MTT networks (the "teachers", ~2.4 GFLOP per patch each).

Input ``melspec`` (n, 187, 96) log-mel frames (see :mod:`realtime.embedding`); outputs
``embedding`` (n, 200): the MSD teacher's penultimate layer, standardised per value;
``tags`` (n, 100): the teachers' tag probabilities (50 MSD then 50 MTT tags); ``speech``
(n, 1): the probability that speech dominates the patch. About 20 MFLOP per patch.
Training-time only (torch); the runtime runs the ONNX export.
"""

from __future__ import annotations

import torch
from torch import nn


class Student(nn.Module):
    """1-D convolutions over time with the mel bands as channels (cheap on one CPU core):
    frames averaged in pairs, then ``len(widths)`` conv-BN-ReLU layers with max-pooling
    between them, mean and max over time, one hidden layer, three heads."""

    def __init__(self, *, n_mels: int = 96, widths=(128, 128, 192, 256), n_embedding: int = 200,
                 n_tags: int = 100, n_aux: int = 0):
        super().__init__()
        layers, c = [nn.AvgPool1d(2), nn.BatchNorm1d(n_mels)], n_mels
        for i, w in enumerate(widths):
            layers += [nn.Conv1d(c, w, 3, padding=1, bias=False), nn.BatchNorm1d(w), nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool1d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.hidden = nn.Sequential(nn.Linear(2 * c, 256), nn.ReLU(), nn.Dropout(0.1))
        self.embedding = nn.Linear(256, n_embedding)
        self.tags = nn.Linear(256, n_tags)
        self.speech = nn.Linear(256, 1)
        # Training only: a further target from the hidden layer (the MTT teacher's penultimate
        # layer), which shapes the shared layers and is not exported.
        self.aux = nn.Linear(256, n_aux) if n_aux else None

    def hidden_of(self, melspec):
        """The 256-value hidden layer every head reads."""
        x = self.features(melspec.transpose(1, 2))  # (n, mels, frames) -> (n, c, t)
        return self.hidden(torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1))

    def logits(self, melspec):
        """(embedding, tag logits, speech logit) for training losses."""
        h = self.hidden_of(melspec)
        return self.embedding(h), self.tags(h), self.speech(h)

    def forward(self, melspec):
        emb, tags, speech = self.logits(melspec)
        return emb, torch.sigmoid(tags), torch.sigmoid(speech)
