using System.Globalization;

namespace Conic.Training;

/// <summary>What one epoch of pretraining measured.</summary>
/// <param name="ElapsedMinutes">Wall-clock minutes of training from its start to the end of this epoch (monitor included),
/// across resumes: the x axis of a learning curve against time.</param>
/// <param name="CommunicationShare">In a data-parallel run, the share of the epoch rank 0 spent in collectives.</param>
public sealed record EpochMetrics(int Epoch, long Step, double LearningRate, double Loss,
                                  IReadOnlyList<(string Name, double Value)> Terms, double ImagesPerSecond, double Seconds,
                                  double? MonitorKnnTop1 = null, double? ElapsedMinutes = null, double? CommunicationShare = null);

/// <summary>
/// metrics.csv in the run folder: one row per epoch. On resume the rows after the checkpoint's epoch are dropped,
/// so the file always matches the weights. Every change rewrites the (small) file atomically, so a kill leaves no
/// half-written row.
/// </summary>
public sealed class MetricsCsv(string path)
{
    /// <summary>Keeps the rows of the first <paramref name="epoch"/> epochs (those the checkpoint holds); 0 starts a new file.</summary>
    public void StartAfter(int epoch)
    {
        if (!File.Exists(path)) return;
        if (epoch == 0)
        {
            File.Delete(path);
            return;
        }
        var lines = File.ReadAllLines(path);
        var kept = lines.Take(1).Concat(lines.Skip(1).Where(l =>
            int.TryParse(l.Split(',')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int e) && e <= epoch));
        Runtime.AtomicFile.WriteText(path, string.Concat(kept.Select(line => line + "\n")));
    }

    /// <summary>The column names, in file order (empty when the file does not exist).</summary>
    public string[] Columns() => File.Exists(path) ? File.ReadLines(path).First().Split(',') : [];

    /// <summary>One column's values by epoch, skipping epochs where it is empty (the monitor runs every few epochs).</summary>
    public IReadOnlyList<(int Epoch, double Value)> Column(string column)
    {
        if (!File.Exists(path)) return [];
        var lines = File.ReadAllLines(path);
        int index = Array.IndexOf(lines[0].Split(','), column);
        if (index < 0) return [];
        return lines.Skip(1).Select(l => l.Split(','))
                    .Where(cells => index < cells.Length && cells[index].Length > 0)
                    .Select(cells => (int.Parse(cells[0], CultureInfo.InvariantCulture), double.Parse(cells[index], CultureInfo.InvariantCulture)))
                    .ToArray();
    }

    /// <summary>Adds the epoch's row (the header first, in a new file).</summary>
    public void Append(EpochMetrics metrics)
    {
        string text = File.Exists(path)
            ? File.ReadAllText(path)
            : string.Join(",", new[] { "epoch", "step", "lr", "loss" }.Concat(metrics.Terms.Select(t => t.Name))
                                                                      .Concat(new[] { "images_per_second", "seconds", "monitor_knn_top1", "elapsed_minutes", "communication_share" })) + "\n";
        var values = new[] { metrics.LearningRate, metrics.Loss }.Concat(metrics.Terms.Select(t => t.Value))
                                                                  .Concat(new[] { metrics.ImagesPerSecond, metrics.Seconds });
        string row = string.Join(",", new[] { metrics.Epoch.ToString(CultureInfo.InvariantCulture), metrics.Step.ToString(CultureInfo.InvariantCulture) }
            .Concat(values.Select(v => v.ToString("G6", CultureInfo.InvariantCulture)))
            .Append(metrics.MonitorKnnTop1?.ToString("G6", CultureInfo.InvariantCulture) ?? "")
            .Append(metrics.ElapsedMinutes?.ToString("G6", CultureInfo.InvariantCulture) ?? "")
            .Append(metrics.CommunicationShare?.ToString("G4", CultureInfo.InvariantCulture) ?? ""));
        Runtime.AtomicFile.WriteText(path, text + row + "\n");
    }
}
