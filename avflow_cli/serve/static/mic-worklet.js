// The microphone's AudioWorklet (Live mode, live.js): the capture rate (sampleRate, often 48 kHz)
// down to the rate declared in hello (16 kHz), as int16 blocks of 50 ms posted to the page.
"use strict";

class Downsampler extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.ratio = sampleRate / options.processorOptions.rate;  // input samples per output sample
    this.acc = 0; this.n = 0; this.pos = 0; this.out = new Int16Array(800); this.k = 0;
  }
  process(inputs) {
    const x = inputs[0] && inputs[0][0];
    if (!x) return true;
    for (let i = 0; i < x.length; i++) {  // box filter over each output period: averages, then decimates
      this.acc += x[i]; this.n += 1; this.pos += 1;
      if (this.pos >= this.ratio) {
        this.pos -= this.ratio;
        const v = Math.max(-1, Math.min(1, this.acc / this.n));
        this.out[this.k++] = Math.round(v * 32767);
        this.acc = 0; this.n = 0;
        if (this.k === this.out.length) { this.port.postMessage(this.out.slice(0)); this.k = 0; }
      }
    }
    return true;
  }
}
registerProcessor("avflow-downsampler", Downsampler);
