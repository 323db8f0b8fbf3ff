namespace Conic;

/// <summary>Option checks shared by every options record; each failure names the option and its value in one line.</summary>
static class Check
{
    public static void Positive(string option, double value)
    {
        if (!(value > 0)) throw new ConicException($"{option}: {value} must be > 0");
    }

    public static void NonNegative(string option, double value)
    {
        if (value < 0) throw new ConicException($"{option}: {value} must be >= 0");
    }

    public static void UnitInterval(string option, double value)
    {
        if (value is < 0 or > 1) throw new ConicException($"{option}: {value} must be in [0, 1]");
    }

    /// <summary>A softmax temperature: logits are similarities divided by it, so below 0.001 they leave float32's useful range.</summary>
    public static void Temperature(string option, double value)
    {
        if (value is not (>= 1e-3 and <= 100)) throw new ConicException($"{option}: {value} is not a usable temperature (0.001 to 100; typical 0.05 to 0.5)");
    }

    /// <summary>At most <paramref name="maximum"/>: values past it only overflow the loss (the NaN would blame something else).</summary>
    public static void AtMost(string option, double value, double maximum, string why)
    {
        if (value > maximum) throw new ConicException($"{option}: {value} is too large (at most {maximum}; {why})");
    }

    public static void Probability(string option, double value)
    {
        if (value is < 0 or > 1) throw new ConicException($"{option}: {value} is not a probability in [0, 1]");
    }
}
