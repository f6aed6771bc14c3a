"""Power cuts replayed from a write log (tests/crash/write-log.c records every
write, durable write, sync, truncate and hole punch a process makes to one
file, in order).

    log = WriteLog.read(path)
    img = log.image_at(base_bytes, cut, model="reorder", rng=random.Random(1))

`image_at` rebuilds the file as a disk would hold it if power were cut just
before record `cut`:
  - everything before the last completed sync survives, and so does every
    write made durable on its own (RWF_DSYNC) before the cut;
  - model "synced": nothing else survives (only what was synced);
  - model "reorder": each other write since that sync survives or not, at
    random and independently (a disk may reorder what it was not told to
    order), applied in log order. Writes are atomic (no torn sectors).
"""
import struct

_HDR = struct.Struct("<cQQ")


class Record:
    __slots__ = ("kind", "offset", "length", "data")

    def __init__(self, kind, offset, length, data):
        self.kind, self.offset, self.length, self.data = kind, offset, length, data

    def is_write(self):
        return self.kind in "WD"

    def apply(self, img):
        if self.kind in "WD":
            end = self.offset + self.length
            if end > len(img):
                img.extend(bytes(end - len(img)))
            img[self.offset:end] = self.data
        elif self.kind == "T":
            if self.offset < len(img):
                del img[self.offset:]
            else:
                img.extend(bytes(self.offset - len(img)))
        elif self.kind == "Z":
            end = min(self.offset + self.length, len(img))
            if end > self.offset:
                img[self.offset:end] = bytes(end - self.offset)


class WriteLog:
    def __init__(self, records):
        self.records = records
        # index of the last sync strictly before each position
        self._last_sync = []
        last = -1
        for i, r in enumerate(records):
            self._last_sync.append(last)
            if r.kind == "S":
                last = i
        self._last_sync.append(last)

    @classmethod
    def read(cls, path):
        data = open(path, "rb").read()
        records, pos = [], 0
        while pos < len(data):
            kind, off, length = _HDR.unpack_from(data, pos)
            pos += _HDR.size
            kind = kind.decode()
            payload = None
            if kind in "WD":
                payload = data[pos:pos + length]
                if len(payload) != length:
                    raise ValueError(f"truncated write record at {pos}")
                pos += length
            elif kind not in "STZ":
                raise ValueError(f"unknown record {kind!r} at {pos}")
            records.append(Record(kind, off, length, payload))
        return cls(records)

    def __len__(self):
        return len(self.records)

    def syncs(self):
        return sum(1 for r in self.records if r.kind == "S")

    def image_at(self, base, cut, model="synced", rng=None):
        """bytearray of the file after a power cut before record `cut`."""
        last_sync = self._last_sync[cut]
        img = bytearray(base)
        for i in range(cut):
            r = self.records[i]
            if (i < last_sync or r.kind == "D" or
                    (model == "reorder" and rng.random() < 0.5)):
                r.apply(img)
        return img
