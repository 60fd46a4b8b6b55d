// The admin's copy buttons (payments.admin.whole): the whole address or hash to the clipboard.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy-text]");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copyText).then(() => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
});
