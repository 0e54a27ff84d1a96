package pipeline

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"regexp"
	"strings"
)

// reportCSS styles report.html: readable tables, verdicts in colour, plots
// as wide as the text. Nothing is fetched: the page is one file.
const reportCSS = `
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; color: #222; max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.9em; margin-bottom: 0.3em; }
h2 { font-size: 1.4em; margin-top: 2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
h3 { font-size: 1.15em; margin-top: 1.5em; }
nav { background: #f6f6f6; border: 1px solid #ddd; padding: 0.5em 1em; margin: 1em 0; }
nav a { margin-right: 1.2em; white-space: nowrap; }
div.table { overflow-x: auto; margin: 0.6em 0 1.4em; }
table { border-collapse: collapse; font-size: 0.92em; }
td:first-child { white-space: nowrap; }
th, td { border: 1px solid #d0d0d0; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #eef1f5; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
td.better { background: #dff0d8 !important; color: #1e5f1e; }
td.worse { background: #f8dcdc !important; color: #8a1f1f; }
td.unresolved { background: #fff6d5 !important; color: #6b5400; }
p.caption { margin-bottom: 0.2em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #e2e2e2; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f2f2f2; padding: 0 0.25em; border-radius: 3px; font-size: 0.92em; }
ul.bullets li { margin-bottom: 0.35em; }
`

var (
	mdBold = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdCode = regexp.MustCompile("`([^`]+)`")
)

// inlineHTML turns the inline Markdown of the report (**bold**, `code`)
// into HTML, escaping everything else.
func inlineHTML(s string) string {
	s = html.EscapeString(s)
	s = mdCode.ReplaceAllString(s, "<code>$1</code>")
	return mdBold.ReplaceAllString(s, "<strong>$1</strong>")
}

// anchor is a section's id: its title in lower case, runs of other
// characters as "-".
func anchor(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(title) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// renderHTML writes the document as one self-contained HTML page: its
// styles inline and every plot embedded as a PNG data URI (images, by
// file name). A plot missing from images is an error.
func renderHTML(doc []docSection, images map[string][]byte) ([]byte, error) {
	var b bytes.Buffer
	title := "Pretext comparison"
	if len(doc) > 0 {
		title = doc[0].Title
	}
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n", html.EscapeString(title), reportCSS)
	var err error
	var section func(s docSection, level int)
	section = func(s docSection, level int) {
		fmt.Fprintf(&b, "<h%d id=\"%s\">%s</h%d>\n", level, anchor(s.Title), html.EscapeString(s.Title), level)
		if level == 1 && len(doc) > 1 {
			b.WriteString("<nav>")
			for _, t := range doc[1:] {
				fmt.Fprintf(&b, "<a href=\"#%s\">%s</a> ", anchor(t.Title), html.EscapeString(t.Title))
			}
			b.WriteString("</nav>\n")
		}
		for _, t := range s.Text {
			fmt.Fprintf(&b, "<p>%s</p>\n", inlineHTML(t))
		}
		for _, t := range s.Tables {
			if t.Caption != "" {
				fmt.Fprintf(&b, "<p class=\"caption\">%s</p>\n", inlineHTML(t.Caption))
			}
			b.WriteString("<div class=\"table\"><table>\n<thead><tr>")
			for i, h := range t.Head {
				cl := ""
				if i < len(t.Right) && t.Right[i] {
					cl = " class=\"num\""
				}
				fmt.Fprintf(&b, "<th%s>%s</th>", cl, inlineHTML(h))
			}
			b.WriteString("</tr></thead>\n<tbody>\n")
			for r, row := range t.Rows {
				b.WriteString("<tr>")
				for i, c := range row {
					var cls []string
					if i < len(t.Right) && t.Right[i] {
						cls = append(cls, "num")
					}
					if r < len(t.Class) && i < len(t.Class[r]) && t.Class[r][i] != "" {
						cls = append(cls, t.Class[r][i])
					}
					attr := ""
					if len(cls) > 0 {
						attr = " class=\"" + strings.Join(cls, " ") + "\""
					}
					fmt.Fprintf(&b, "<td%s>%s</td>", attr, inlineHTML(c))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</tbody>\n</table></div>\n")
		}
		if len(s.Bullets) > 0 {
			b.WriteString("<ul class=\"bullets\">\n")
			for _, l := range s.Bullets {
				fmt.Fprintf(&b, "<li>%s</li>\n", inlineHTML(l))
			}
			b.WriteString("</ul>\n")
		}
		for _, p := range s.Plots {
			png, ok := images[p.File]
			if !ok {
				if err == nil {
					err = fmt.Errorf("report.html: no image for the plot %q", p.File)
				}
				continue
			}
			fmt.Fprintf(&b, "<figure><img src=\"data:image/png;base64,%s\" alt=\"%s\"><figcaption>%s (%s)</figcaption></figure>\n",
				base64.StdEncoding.EncodeToString(png), html.EscapeString(p.Alt), html.EscapeString(p.Alt), html.EscapeString(p.File))
		}
		for _, sub := range s.Sub {
			section(sub, level+1)
		}
	}
	for i, s := range doc {
		level := 2
		if i == 0 {
			level = 1
		}
		section(s, level)
	}
	b.WriteString("</body>\n</html>\n")
	return b.Bytes(), err
}
