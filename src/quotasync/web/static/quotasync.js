// The pages' one script, from a file: the Content-Security-Policy runs nothing inline
// (docs/SECURITY.md). Everything works without it; it only shows a slider's value as it moves.
document.addEventListener("input", (event) => {
  const slider = event.target;
  if (!(slider instanceof HTMLInputElement) || !slider.hasAttribute("data-shows-percent")) {
    return;
  }
  const shown = slider.nextElementSibling;
  if (shown instanceof HTMLOutputElement) {
    shown.value = `${slider.value}%`;
  }
  slider.setAttribute("aria-valuetext", `${slider.value} percent`);
});
