using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Conic.Tests;

/// <summary>
/// The accuracies in the README's and docs' tables are the committed eval.json files' numbers: every table row that
/// links one eval.json has its kNN and linear cells (and the README's floors) checked against that file, to the
/// decimals shown, so a rerun or a hand edit cannot leave a stale number behind.
/// </summary>
public partial class DocumentationNumbersTests
{
    static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));

    [Fact]
    public void EveryTableRowLinkingAnEvalJsonQuotesItsNumbers()
    {
        var pages = Directory.GetFiles(Path.Combine(Root, "docs"), "*.md", SearchOption.AllDirectories).Prepend(Path.Combine(Root, "README.md"));
        var wrong = new List<string>();
        int checkedCells = 0, readmeRows = 0;
        foreach (string page in pages)
            foreach (var row in TableRows(page))
            {
                var links = EvalLink().Matches(string.Join("|", row.Cells)).Select(m => m.Groups[1].Value).Distinct().ToList();
                if (links.Count != 1) continue;
                string file = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, links[0]));
                Assert.True(File.Exists(file), $"{page}: links {links[0]}, which does not exist");
                using var json = JsonDocument.Parse(File.ReadAllText(file));
                double? Value(string key) => json.RootElement.TryGetProperty(key, out var v) ? v.GetDouble() : null;
                string where = $"{Path.GetRelativePath(Root, page)} row '{row.Cells[0].Trim()}'";
                void Check(int column, params string[] keys)
                {
                    if (column < 0) return;
                    var shown = Number().Matches(row.Cells[column]).Select(m => m.Groups[1].Value).ToList();
                    // Cells with several runs' numbers ("85.45 / 83.43 %") or none are not one file's.
                    if (shown.Count != keys.Length) return;
                    for (int i = 0; i < keys.Length; i++)
                    {
                        checkedCells++;
                        double? actual = Value(keys[i]) * 100;
                        int decimals = shown[i].Length - shown[i].IndexOf('.') - 1;
                        if (actual == null || Math.Abs(Math.Round(actual.Value, decimals) - double.Parse(shown[i], CultureInfo.InvariantCulture)) > 1e-9)
                            wrong.Add($"{where}: {keys[i]} shown {shown[i]}, {links[0]} holds {actual?.ToString("F4", CultureInfo.InvariantCulture) ?? "nothing"}");
                    }
                }
                Check(row.Knn, "knn_top1");
                Check(row.Linear, "linear_top1");
                if (row.Floors >= 0)
                {
                    bool hasLinearFloor = Value("raw_pixel_linear_top1") != null;
                    Check(row.Floors, hasLinearFloor ? ["raw_pixel_knn_top1", "standardized_pixel_knn_top1", "raw_pixel_linear_top1"]
                                                     : ["raw_pixel_knn_top1", "standardized_pixel_knn_top1"]);
                }
                if (page.EndsWith("README.md", StringComparison.Ordinal) && Path.GetDirectoryName(page) == Root) readmeRows++;
            }
        Assert.Empty(wrong);
        Assert.True(readmeRows >= 5, $"the README's results table has {readmeRows} rows linking an eval.json");
        Assert.True(checkedCells >= 30, $"only {checkedCells} numbers were checked");
    }

    sealed record Row(string[] Cells, int Knn, int Linear, int Floors);

    /// <summary>The body rows of every Markdown table in the file, with the columns its header names.</summary>
    static IEnumerable<Row> TableRows(string page)
    {
        string[]? header = null;
        foreach (string line in File.ReadLines(page))
        {
            if (!line.StartsWith('|')) { header = null; continue; }
            var cells = line.Trim().Trim('|').Split('|');
            if (header == null) { header = cells; continue; }
            if (cells.All(c => c.Trim().Trim('-', ':').Length == 0)) continue;  // the separator row
            int Column(string name) => Array.FindIndex(header, h => h.Contains(name, StringComparison.OrdinalIgnoreCase));
            yield return new Row(cells, Column("kNN"), Column("linear"), Column("floors"));
        }
    }

    [GeneratedRegex(@"\]\(([^)\s]*eval\.json)\)")]
    private static partial Regex EvalLink();

    [GeneratedRegex(@"(\d+\.\d+)")]
    private static partial Regex Number();
}
