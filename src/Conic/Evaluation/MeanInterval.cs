using System.Globalization;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.Statistics;

namespace Conic.Evaluation;

/// <summary>
/// The mean of a few repeated measurements (seeds) with its two-sided 95 % Student-t interval; with one measurement
/// there is no interval (<see cref="HalfWidth"/> is NaN) and nothing can be separated.
/// </summary>
public sealed record MeanInterval(double Mean, double HalfWidth, int Count)
{
    /// <summary>The interval's lower end.</summary>
    public double Low => Mean - HalfWidth;
    /// <summary>The interval's upper end.</summary>
    public double High => Mean + HalfWidth;
    /// <summary>Whether there were two or more values, so that an interval exists.</summary>
    public bool HasInterval => Count >= 2;

    /// <summary>The mean of <paramref name="values"/> and its 95 % interval.</summary>
    public static MeanInterval Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values to average", nameof(values));
        double mean = values.Mean();
        if (values.Count == 1) return new MeanInterval(mean, double.NaN, 1);
        // MathNet's Student t: a well-kept quantile function rather than a hand-written table of t values.
        double t = StudentT.InvCDF(0, 1, values.Count - 1, 0.975);
        return new MeanInterval(mean, t * values.StandardDeviation() / Math.Sqrt(values.Count), values.Count);
    }

    /// <summary>+1 when this interval lies wholly above <paramref name="other"/>, −1 wholly below, 0 when they overlap or either has one value.</summary>
    public int Separation(MeanInterval other) =>
        !HasInterval || !other.HasInterval ? 0 : Low > other.High ? 1 : High < other.Low ? -1 : 0;

    /// <summary>"26.94 ± 1.20" in percent of a 0–1 score (the mean alone for one value).</summary>
    public string ToPercent() => HasInterval
        ? string.Create(CultureInfo.InvariantCulture, $"{100 * Mean:F2} ± {100 * HalfWidth:F2}")
        : string.Create(CultureInfo.InvariantCulture, $"{100 * Mean:F2}");
}
