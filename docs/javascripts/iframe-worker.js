// Search from file://. Chromium starts no web worker from a file:// page, and Material runs its search in
// one; the offline plugin would fetch a shim for that from a CDN. This is lmpshear's own: on file:// only,
// `Worker` runs the worker's script in a hidden same-origin iframe, its messages passed both ways as
// MessageEvents. Material's search worker knows this case (it looks for `parent.IFrameWorker`) and then
// awaits `importScripts`, which is why that returns a Promise here.
(function () {
  if (location.protocol !== "file:") return;

  class IFrameWorker extends EventTarget {
    constructor(url) {
      super();
      this.onmessage = null;
      this.onerror = null;
      const frame = document.createElement("iframe");
      frame.style.display = "none";
      (document.body || document.documentElement).appendChild(frame);
      const inner = frame.contentWindow;
      const outer = this;
      inner.postMessage = (data) => outer._deliver(data);  // the worker's postMessage reaches us
      inner.importScripts = (...urls) => Promise.all(urls.map((src) => load(inner.document, src)));
      this._frame = frame;
      this._ready = load(inner.document, new URL(url, location.href).href).catch((error) => {
        const event = new ErrorEvent("error", {message: String(error)});
        if (this.onerror) this.onerror(event);
        this.dispatchEvent(event);
      });
    }

    postMessage(data) {  // ours reaches the worker, once its script has run
      this._ready.then(() => {
        const inner = this._frame.contentWindow;
        inner.dispatchEvent(new inner.MessageEvent("message", {data}));
      });
    }

    terminate() {
      this._frame.remove();
    }

    _deliver(data) {
      const event = new MessageEvent("message", {data});
      if (this.onmessage) this.onmessage(event);
      this.dispatchEvent(event);
    }
  }

  function load(doc, src) {
    return new Promise((resolve, reject) => {
      const script = doc.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`cannot load ${src}`));
      (doc.head || doc.documentElement).appendChild(script);
    });
  }

  window.IFrameWorker = IFrameWorker;
  window.Worker = IFrameWorker;
})();
