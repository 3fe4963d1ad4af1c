"""Figure titles fit their figure (#21 item 7: the confusion matrices cut the row descriptions off)."""
from __future__ import annotations

import numpy as np

from benchmark.reporting.tables import confusion_figure

LONG = ("exp 11: Fbank & BERT → late fusion of two ECAPA-TDNN aggregators + linear, top-5 average of the "
        "fine-tuned text branch and the fbank branch")


def test_a_long_row_description_stays_inside_the_confusion_figure():
    figure = confusion_figure(np.array([[5, 1, 0, 0], [0, 4, 1, 1], [1, 0, 6, 0], [0, 0, 1, 7]]), LONG, ("neu", "hap", "ang", "sad"))
    renderer = figure.canvas.get_renderer()
    title = figure.axes[0].title
    box, frame = title.get_window_extent(renderer), figure.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1, (box, frame)
    assert title.get_text().replace("\n", " ") == LONG  # wrapped, nothing dropped
