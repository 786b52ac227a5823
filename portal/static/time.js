// Shows every <time datetime="…"> of the page in the browser's own time
// zone. The server wrote it in the zone of the phone number, which is
// right without this script, and a guess where the number spans several
// zones (it then carries the zone's abbreviation, marked data-abbr). The
// browser knows where the phone is now; its time is written the same way,
// with the abbreviation when it differs from the server's zone.
(function () {
  "use strict";
  if (typeof Intl !== "object" || !Intl.DateTimeFormat) {
    return;
  }
  var here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  var lang = document.documentElement.lang || undefined;
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i];
    var t = new Date(el.getAttribute("datetime"));
    if (isNaN(t.getTime())) {
      continue;
    }
    var abbr = el.hasAttribute("data-abbr") || el.getAttribute("data-tz") !== here;
    var opts = {
      weekday: "short", day: "numeric", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"
    };
    if (abbr) {
      opts.timeZoneName = "short";
    }
    var p = {};
    var parts = new Intl.DateTimeFormat(lang, opts).formatToParts(t);
    for (var j = 0; j < parts.length; j++) {
      p[parts[j].type] = parts[j].value;
    }
    var text = p.weekday + " " + p.day + " " + p.month + " " + p.year + ", " + p.hour + ":" + p.minute;
    if (abbr && p.timeZoneName) {
      text += " " + p.timeZoneName;
    }
    el.textContent = text;
    el.setAttribute("data-tz", here);
  }
})();
