using System.Diagnostics;

namespace Conic.Training;

/// <summary>
/// One status line on stderr: epoch, step, loss, images/s and time left. Redrawn in place on a terminal (at most
/// 4 times a second); when stderr is redirected, one line per epoch so logs stay readable.
/// </summary>
/// <param name="totalEpochs">Null for a time-budget run, whose number of epochs is not known ahead.</param>
public sealed class ProgressBar(TextWriter output, int? totalEpochs, int stepsPerEpoch)
{
    readonly bool _interactive = ReferenceEquals(output, Console.Error) && !Console.IsErrorRedirected;
    readonly Stopwatch _sinceDraw = Stopwatch.StartNew();

    /// <summary>Redraws the line during an epoch (at most 4 times a second, only on a terminal).</summary>
    public void Update(int epoch, int stepInEpoch, double loss, double imagesPerSecond, TimeSpan remaining)
    {
        if (!_interactive || (_sinceDraw.ElapsedMilliseconds < 250 && stepInEpoch < stepsPerEpoch)) return;
        _sinceDraw.Restart();
        const int barWidth = 24;
        int filled = (int)Math.Round(barWidth * (double)stepInEpoch / stepsPerEpoch);
        output.Write($"\repoch {EpochText(epoch)} [{new string('#', filled)}{new string('.', barWidth - filled)}] " +
                     $"{stepInEpoch}/{stepsPerEpoch} loss {loss:F4} {imagesPerSecond:F0} img/s eta {remaining:hh\\:mm\\:ss}   ");
    }

    /// <summary>Epochs whose times predict the rest: recent ones, so a slow patch (another process, a cold start) fades.</summary>
    const int RecentEpochs = 5;
    readonly Queue<double> _recentSeconds = new();

    /// <summary>Time left after <paramref name="epoch"/>: the mean of the last few epochs' times (the whole epoch, monitor and checkpoint included) per remaining epoch.</summary>
    public TimeSpan Remaining(int epoch, double epochSeconds)
    {
        _recentSeconds.Enqueue(epochSeconds);
        if (_recentSeconds.Count > RecentEpochs) _recentSeconds.Dequeue();
        return TimeSpan.FromSeconds(_recentSeconds.Average() * ((totalEpochs ?? epoch) - epoch));
    }

    /// <summary>The epoch's line: loss and terms, learning rate, images/s, time and the online kNN.</summary>
    public void EndEpoch(EpochMetrics metrics, TimeSpan remaining)
    {
        string terms = string.Join(" ", metrics.Terms.Select(t => $"{t.Name} {t.Value:F4}"));
        if (_interactive) output.Write('\r');
        output.WriteLine($"epoch {EpochText(metrics.Epoch)} loss {metrics.Loss:F4} ({terms}) lr {metrics.LearningRate:G3} " +
                         $"{metrics.ImagesPerSecond:F0} img/s {metrics.Seconds:F1}s eta {remaining:hh\\:mm\\:ss}" +
                         (metrics.MonitorKnnTop1 is double knn ? $" monitor kNN {knn:P1}" : ""));
    }

    string EpochText(int epoch) => totalEpochs is int total ? $"{epoch}/{total}" : $"{epoch}";
}
