// Building the panel's DOM in code, typed: each module keeps references to the elements it made, so
// nothing is looked up by id (ids stay for the stylesheet, aria links and tests). Strings become
// text nodes: token text is never parsed as markup.

type Attributes = Record<string, string | number | boolean | undefined>;

/** `<tag attributes>children</tag>`; a `true` attribute is present and empty, false/undefined ones are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [name, v] of Object.entries(attributes)) {
    if (v !== undefined && v !== false) e.setAttribute(name, v === true ? '' : String(v));
  }
  e.append(...children);
  return e;
}

/** Marks an element whose arrow keys are its own (the panel's layer/head keys leave them alone). */
export const OWN_KEYS = 'data-own-keys';
