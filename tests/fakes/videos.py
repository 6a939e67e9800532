"""Real tiny videos for tests, encoded with PyAV (FFmpeg's own MPEG-4 encoder, present in every wheel)."""

from __future__ import annotations

import io

import av
import numpy as np


def tiny_video(container: str = "mp4", *, frames: int = 3, size: tuple[int, int] = (32, 24),
               audio_only: bool = False) -> bytes:
    """A few frames of colour as an MP4 (`container="mp4"`) or QuickTime (`"mov"`) file, or, with
    `audio_only`, an MP4 holding nothing but a short AAC tone (an .m4a in an MP4 costume)."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as box:
        if audio_only:
            audio = box.add_stream("aac", rate=8000)
            samples = np.zeros((1, 1024), dtype=np.float32)
            for n in range(frames):
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate = 8000
                frame.pts = n * 1024
                for packet in audio.encode(frame):
                    box.mux(packet)
            for packet in audio.encode(None):
                box.mux(packet)
        else:
            stream = box.add_stream("mpeg4", rate=10)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            for n in range(frames):
                picture = np.full((size[1], size[0], 3), (40 * n) % 256, dtype=np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    box.mux(packet)
            for packet in stream.encode(None):
                box.mux(packet)
    return out.getvalue()
