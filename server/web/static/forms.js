// What every form and row of the page shares: building elements, datetime-local values, field errors.

export const $ = (selector) => document.querySelector(selector);

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const pad = (number) => String(number).padStart(2, "0");

export function toLocalInput(iso) { // "2026-11-28T09:30:00Z" -> the datetime-local value in this browser's zone
  if (!iso) return "";
  const date = new Date(iso);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export const fromLocalInput = (value) => (value ? new Date(value).toISOString() : undefined);

export function clearErrors(form) {
  for (const node of form.querySelectorAll(".error, .form-error")) node.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// Put the server's messages next to their fields; anything else goes to the form's own line.
export function showErrors(form, prefix, errors) {
  clearErrors(form);
  const fields = errors.length === 1 && typeof errors[0] === "object" ? errors[0] : { non_field_errors: errors };
  let first = null;
  for (const [field, messages] of Object.entries(fields)) {
    const input = form.querySelector(`#${prefix}-${field}`);
    const text = [].concat(messages).join(" ");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      $(`#${prefix}-${field}-error`).textContent = text;
      first = first ?? input;
    } else {
      const line = $(`#${prefix}-error`);
      line.textContent = `${line.textContent} ${text}`.trim();
    }
  }
  (first ?? form.querySelector("input, select, button")).focus();
}
