// A small, safe Markdown subset for study texts, built with DOM nodes (text is never parsed as HTML):
// paragraphs, "# " and "## " headings, "- " lists, **bold**, *italic*, and images "![alt](/study-files/...)"
// alone on a line (only the study's own files, which the server checked and serves).

const IMAGE = /^!\[([^\]]*)\]\((\/study-files\/[^)\s]+)\)$/;

/** Append `text` to `parent` with **bold** and *italic* spans. */
function inline(parent, text) {
  const parts = String(text).split(/(\*\*[^*]+\*\*|\*[^*]+\*)/);
  for (const part of parts) {
    if (!part) continue;
    if (part.startsWith("**") && part.endsWith("**") && part.length > 4) {
      const b = document.createElement("strong");
      b.textContent = part.slice(2, -2);
      parent.append(b);
    } else if (part.startsWith("*") && part.endsWith("*") && part.length > 2) {
      const i = document.createElement("em");
      i.textContent = part.slice(1, -1);
      parent.append(i);
    } else {
      parent.append(document.createTextNode(part));
    }
  }
}

/** A DocumentFragment for `text`. */
export function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  const blocks = String(text || "").replace(/\r\n?/g, "\n").split(/\n\s*\n/);
  for (const block of blocks) {
    const lines = block.split("\n").map((l) => l.trim()).filter(Boolean);
    if (lines.length === 0) continue;
    if (lines.every((l) => l.startsWith("- "))) {
      const ul = document.createElement("ul");
      for (const l of lines) {
        const li = document.createElement("li");
        inline(li, l.slice(2));
        ul.append(li);
      }
      out.append(ul);
      continue;
    }
    let paragraph = null;
    for (const line of lines) {
      const heading = /^(#{1,2}) (.*)$/.exec(line);
      const image = IMAGE.exec(line);
      if (heading || image) {
        paragraph = null;
        if (heading) {
          const h = document.createElement(heading[1] === "#" ? "h3" : "h4");
          inline(h, heading[2]);
          out.append(h);
        } else {
          const img = document.createElement("img");
          img.alt = image[1];
          img.src = image[2];
          const p = document.createElement("p");
          p.append(img);
          out.append(p);
        }
        continue;
      }
      if (!paragraph) {
        paragraph = document.createElement("p");
        out.append(paragraph);
      } else {
        paragraph.append(document.createElement("br"));
      }
      inline(paragraph, line);
    }
  }
  return out;
}
