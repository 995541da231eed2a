// spacehub: the live parts of the pages (logs, a space's progress). Pages work without it.
(function () {
  "use strict";

  function appendLine(box, text, timestamp) {
    var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    var line = document.createElement("div");
    if (timestamp) {
      var ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = timestamp.slice(11, 19) + " ";
      line.appendChild(ts);
    }
    line.appendChild(document.createTextNode(text.replace(/\n$/, "")));
    if (/error|traceback|exception/i.test(text)) { line.className = "err"; }
    box.appendChild(line);
    while (box.childNodes.length > 5000) { box.removeChild(box.firstChild); }
    if (atBottom) { box.scrollTop = box.scrollHeight; }
  }

  // Follow a log (Server-Sent Events of the Hub API) into a box.
  function follow(box, url) {
    if (!window.EventSource) { return null; }
    box.textContent = "";
    var source = new EventSource(url);
    source.onmessage = function (event) {
      if (!event.data || event.data.charAt(0) !== "{") { return; }
      var entry = JSON.parse(event.data);
      appendLine(box, entry.data, entry.timestamp);
    };
    source.onerror = function () { source.close(); };
    return source;
  }

  document.querySelectorAll(".live-log[data-url]").forEach(function (box) {
    follow(box, box.getAttribute("data-url"));
  });

  var app = document.getElementById("space-app");
  var panel = document.getElementById("status-panel");
  var banner = document.getElementById("update-banner");

  // A space that serves: say when a new version builds, starts, and is live (the app in the frame
  // keeps its state until the visitor reloads it); show the page again if the app stops.
  if (app && banner && window.fetch) {
    var initialStage = app.getAttribute("data-stage");
    var updating = initialStage === "RUNNING_BUILDING" || initialStage === "RUNNING_APP_STARTING";
    var servedSha = null;
    var text = document.getElementById("update-text");
    var reload = document.getElementById("reload-app");
    reload.addEventListener("click", function () {
      var frame = app.querySelector("iframe");
      frame.src = app.getAttribute("data-app-src");
      banner.hidden = true;
      reload.hidden = true;
    });
    var watch = function () {
      if (document.visibilityState === "hidden") { setTimeout(watch, 5000); return; }
      fetch(app.getAttribute("data-runtime-url"), {credentials: "same-origin", cache: "no-store"})
        .then(function (r) { return r.json(); })
        .then(function (runtime) {
          var stage = runtime.stage;
          if (servedSha === null) { servedSha = runtime.sha; }
          if (stage === "RUNNING_BUILDING" || stage === "RUNNING_APP_STARTING") {
            text.textContent = "A new version is " + (stage === "RUNNING_BUILDING" ? "building" : "starting") +
              "; this one serves until it is ready.";
            banner.hidden = false;
            reload.hidden = true;
            updating = true;
          } else if (stage === "RUNNING" && (updating || runtime.sha !== servedSha)) {
            updating = false;
            servedSha = runtime.sha;
            text.textContent = "A new version is live.";
            banner.hidden = false;
            reload.hidden = false;
          } else if (stage !== "RUNNING" && stage !== "SLEEPING" && stage !== initialStage) {
            window.location.reload();
            return;
          }
          setTimeout(watch, 3000);
        })
        .catch(function () { setTimeout(watch, 10000); });
    };
    setTimeout(watch, 3000);
  }

  // A space that is not serving yet: show its progress and turn into the app when it is ready.
  if (app && panel && window.fetch) {
    var runtimeUrl = app.getAttribute("data-runtime-url");
    var logBox = document.getElementById("status-log");
    var stream = null;
    var streamKind = null;
    var serving = ["RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING", "SLEEPING"];
    var settled = ["PAUSED", "STOPPED", "NO_APP_FILE", "CONFIG_ERROR"];

    function attachLog(stage) {
      if (!logBox) { return; }
      var kind = (stage === "APP_STARTING" || stage === "RUNTIME_ERROR") ? "run" : "build";
      if (kind === streamKind) { return; }
      if (stream) { stream.close(); }
      streamKind = kind;
      stream = follow(logBox, app.getAttribute("data-" + kind + "-log-url"));
    }

    function showApp() {
      if (stream) { stream.close(); }
      var frame = document.createElement("iframe");
      frame.className = "app-frame";
      frame.src = app.getAttribute("data-app-src");
      frame.title = app.getAttribute("data-title");
      frame.setAttribute("allow", "accelerometer; autoplay; camera; clipboard-read; clipboard-write; fullscreen; microphone");
      app.replaceChildren(frame);
    }

    function label(stage) {
      return stage.replace(/_/g, " ").toLowerCase().replace(/^\w|\s\w/g, function (c) { return c.toUpperCase(); });
    }

    function refresh() {
      fetch(runtimeUrl, {credentials: "same-origin", cache: "no-store"})
        .then(function (r) { return r.json(); })
        .then(function (runtime) {
          var stage = runtime.stage;
          var badge = document.querySelector("#stage-badge .badge");
          if (badge) {
            badge.textContent = label(stage);
            badge.className = "badge " + (stage === "RUNNING" ? "ok" : /ERROR|NO_APP_FILE/.test(stage) ? "error" :
              /BUILDING|STARTING/.test(stage) ? "busy" : "idle");
          }
          document.getElementById("status-title").textContent = label(stage);
          document.getElementById("status-message").textContent = runtime.message || runtime.errorMessage || "";
          if (serving.indexOf(stage) >= 0) { showApp(); return; }
          attachLog(stage);
          if (settled.indexOf(stage) < 0) { setTimeout(refresh, 2000); }
        })
        .catch(function () { setTimeout(refresh, 4000); });
    }
    attachLog(app.getAttribute("data-stage"));
    setTimeout(refresh, 1000);
  }

  // The account menu (a <details>) closes on Escape and on a click elsewhere.
  // A model page's try-it form: one call to the hub's inference provider, its answer shown as JSON.
  document.querySelectorAll("section.try-it").forEach(function (section) {
    var form = section.querySelector("form");
    var output = section.querySelector(".try-output");
    var task = section.getAttribute("data-task");
    function show(text) { output.hidden = false; output.textContent = text; }
    function call(body, type, tries) {
      fetch(section.getAttribute("data-url"), {
        method: "POST", credentials: "same-origin", body: body,
        headers: {"Content-Type": type, "X-Requested-With": "spacehub"}
      }).then(function (r) {
        return r.json().then(function (answer) {
          if (r.status === 503 && tries < 60 && answer.estimated_time) {
            show(answer.error + "; trying again…");
            setTimeout(function () { call(body, type, tries + 1); }, 5000);
          } else {
            show(JSON.stringify(answer, null, 2));
          }
        });
      }).catch(function (error) { show(String(error)); });
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      show("Computing…");
      if (task === "image-classification") {
        var file = form.elements.image.files[0];
        call(file, file.type || "application/octet-stream", 0);
        return;
      }
      var inputs = form.elements.inputs.value;
      if (task === "question-answering") { inputs = {question: inputs, context: form.elements.context.value}; }
      call(JSON.stringify({inputs: inputs}), "application/json", 0);
    });
  });

  document.querySelectorAll("details.menu").forEach(function (menu) {
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) { menu.open = false; }
    });
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
    });
  });

  // Copy buttons on code blocks people paste into a terminal.
  document.querySelectorAll("pre.copyable").forEach(function (pre) {
    if (!navigator.clipboard) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "small secondary copy";
    button.textContent = "Copy";
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(pre.innerText).then(function () { button.textContent = "Copied"; });
    });
    pre.insertAdjacentElement("afterend", button);
  });
})();
