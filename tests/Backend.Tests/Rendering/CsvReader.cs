using System.Text;

namespace AttentionViz.Backend.Tests.Rendering;

/// <summary>A small, strict RFC 4180 reader (written independently of the exporter): CRLF records, quoted fields.</summary>
internal static class CsvReader
{
    public static List<string[]> Parse(string text)
    {
        var records = new List<string[]>();
        var fields = new List<string>();
        var field = new StringBuilder();
        var i = 0;
        while (i < text.Length)
        {
            if (field.Length == 0 && text[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= text.Length) throw new FormatException("unterminated quoted field");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    field.Append(text[i++]);
                }
                if (i < text.Length && text[i] != ',' && text[i] != '\r') throw new FormatException($"text after a closing quote at {i}");
                continue;
            }
            switch (text[i])
            {
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    i++;
                    break;
                case '\r':
                    if (i + 1 >= text.Length || text[i + 1] != '\n') throw new FormatException($"bare CR at {i}");
                    fields.Add(field.ToString());
                    field.Clear();
                    records.Add(fields.ToArray());
                    fields.Clear();
                    i += 2;
                    break;
                case '\n': throw new FormatException($"bare LF at {i}");
                case '"': throw new FormatException($"quote inside an unquoted field at {i}");
                default:
                    field.Append(text[i++]);
                    break;
            }
        }
        if (field.Length > 0 || fields.Count > 0) throw new FormatException("the last record does not end in CRLF");
        return records;
    }
}
