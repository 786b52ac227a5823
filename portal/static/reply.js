// Checks the files of the reply form before they are uploaded: when they
// add up to more than the form's data-max bytes, the form says so and is
// not sent, so a patient on a slow connection does not wait for an upload
// the server would refuse. The server checks again: this script is only
// a courtesy, and the form works without it.
(function () {
  "use strict";
  var form = document.querySelector("form[data-max]");
  if (!form) {
    return;
  }
  var max = parseInt(form.getAttribute("data-max"), 10);
  var note = document.getElementById("size-error");
  var inputs = form.querySelectorAll("input[type=file]");
  function total() {
    var n = 0;
    for (var i = 0; i < inputs.length; i++) {
      var files = inputs[i].files || [];
      for (var j = 0; j < files.length; j++) {
        n += files[j].size;
      }
    }
    return n;
  }
  function check() {
    var over = total() > max;
    note.hidden = !over;
    return !over;
  }
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("change", check);
  }
  form.addEventListener("submit", function (e) {
    if (!check()) {
      e.preventDefault();
      note.focus();
    }
  });
})();
