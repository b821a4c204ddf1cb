/** A binary min-heap of (time, id) with lazy deletion: the scheduler's timetable. */
export class TimeHeap {
  private times: number[] = [];
  private ids: string[] = [];

  get size(): number {
    return this.ids.length;
  }

  push(time: number, id: string): void {
    this.times.push(time);
    this.ids.push(id);
    let i = this.ids.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent]! <= this.times[i]!) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  peekTime(): number | undefined {
    return this.times[0];
  }

  pop(): { time: number; id: string } | undefined {
    if (this.ids.length === 0) return undefined;
    const time = this.times[0]!;
    const id = this.ids[0]!;
    const lastT = this.times.pop()!;
    const lastI = this.ids.pop()!;
    if (this.ids.length > 0) {
      this.times[0] = lastT;
      this.ids[0] = lastI;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.ids.length && this.times[l]! < this.times[m]!) m = l;
        if (r < this.ids.length && this.times[r]! < this.times[m]!) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return { time, id };
  }

  private swap(a: number, b: number): void {
    [this.times[a], this.times[b]] = [this.times[b]!, this.times[a]!];
    [this.ids[a], this.ids[b]] = [this.ids[b]!, this.ids[a]!];
  }
}
