// A response's checkpoint (the ordered keys of every item in its context) as bytes:
// each key as the zigzag-varint delta from the one before. Items of one conversation are
// created in order, so most deltas take one or two bytes: a 1000-item history costs
// about 1.5 KB instead of the 35 KB its public ids would.

export function encodeCheckpoint(seqs: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(seqs.length * 9 + 1);
  let offset = 0;
  let previous = 0;
  for (const seq of seqs) {
    const delta = seq - previous;
    previous = seq;
    let zigzag = delta >= 0 ? delta * 2 : -delta * 2 - 1;
    while (zigzag >= 0x80) {
      out[offset++] = (zigzag % 0x80) | 0x80;
      zigzag = Math.floor(zigzag / 0x80);
    }
    out[offset++] = zigzag;
  }
  return Buffer.from(out.subarray(0, offset));
}

export function decodeCheckpoint(bytes: Uint8Array): number[] {
  const seqs: number[] = [];
  let offset = 0;
  let previous = 0;
  while (offset < bytes.length) {
    let zigzag = 0;
    let scale = 1;
    for (;;) {
      const byte = bytes[offset++];
      if (byte === undefined) throw new Error('truncated checkpoint');
      zigzag += (byte & 0x7f) * scale;
      if (byte < 0x80) break;
      scale *= 0x80;
    }
    const delta = zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2;
    previous += delta;
    seqs.push(previous);
  }
  return seqs;
}
