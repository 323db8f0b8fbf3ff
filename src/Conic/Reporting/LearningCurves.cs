using Conic.Runtime;
using Conic.Training;

namespace Conic.Reporting;

/// <summary>
/// The online kNN monitor of several pretraining runs against their wall-clock minutes of training (each run's
/// metrics.csv), in one chart: which run is ahead at every moment of a time budget, and whether it was still rising.
/// </summary>
public static class LearningCurves
{
    /// <summary>Writes the chart as a PNG; false (and no file) when no run has online kNN points.</summary>
    public static bool Write(string path, string title, IReadOnlyList<(string Label, string RunFolder)> runs)
    {
        var series = new List<(string, double[], double[])>();
        foreach (var (label, folder) in runs)
        {
            var metrics = new MetricsCsv(new RunFolder(folder).Metrics);
            var minutes = metrics.Column("elapsed_minutes").ToDictionary(e => e.Epoch, e => e.Value);
            var points = metrics.Column("monitor_knn_top1").Where(e => minutes.ContainsKey(e.Epoch)).ToArray();
            if (points.Length > 0) series.Add((label, points.Select(p => minutes[p.Epoch]).ToArray(), points.Select(p => p.Value).ToArray()));
        }
        if (series.Count == 0) return false;
        AtomicFile.Write(path, stream => stream.Write(Figures.LineChart(title, "minutes of training", "top-1", series)));
        return true;
    }
}
