// ipywidgets' controls (HTML, Label, descriptions) typeset their text with MathJax 2's
// API, MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); the book loads MathJax 3,
// which has no Hub: without this, rendering such a widget throws "Cannot read properties
// of undefined (reading 'Queue')". Loaded before embed.js on pages with widgets
// (nb_ipywidgets_js in _config.yml); installs a Hub that typesets with MathJax 3.
window.addEventListener("load", function () {
  var mj = window.MathJax;
  if (!mj || !mj.version || mj.Hub) return;
  mj.Hub = {
    Queue: function (command) {
      var element = command && command[2];
      var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
      ready.then(function () {
        return mj.typesetPromise(element ? [element] : undefined);
      }).catch(function (err) { console.warn("MathJax:", err); });
    }
  };
});
