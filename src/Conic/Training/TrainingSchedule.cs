namespace Conic.Training;

/// <summary>
/// Where pretraining stands and its learning rate there: linear warm-up over the first steps, then a cosine decay to 0
/// at the end, planned either over a number of steps (<c>--epochs</c>) or over wall-clock time (<c>--time-budget</c>).
/// </summary>
public abstract record TrainingSchedule(double BaseRate, long WarmupSteps)
{
    /// <summary>The fraction of training done, 0 to 1, for the methods' own schedules (λ ramp, EMA momentum).</summary>
    public abstract double Progress(long step, double elapsedSeconds);

    /// <summary>Whether training is over before <paramref name="step"/>.</summary>
    public abstract bool IsOver(long step, double elapsedSeconds);

    /// <summary>The learning rate of <paramref name="step"/>, taken <paramref name="elapsedSeconds"/> into training.</summary>
    public abstract double RateAt(long step, double elapsedSeconds);

    /// <summary>The warm-up's factor at <paramref name="step"/>: rising linearly to 1.</summary>
    protected double Warm(long step) => WarmupSteps <= 0 ? 1 : Math.Min(1.0, (step + 1.0) / WarmupSteps);

    /// <summary>The cosine's factor at <paramref name="progress"/> (0 to 1): from 1 to 0.</summary>
    protected static double Cosine(double progress) => 0.5 * (1 + Math.Cos(Math.PI * Math.Clamp(progress, 0, 1)));
}

/// <summary>A fixed number of steps: warm-up, then cosine from the end of warm-up to the last step (SGDR without restarts).</summary>
public sealed record StepSchedule(double BaseRate, long WarmupSteps, long TotalSteps) : TrainingSchedule(BaseRate, WarmupSteps)
{
    /// <inheritdoc/>
    public override double Progress(long step, double elapsedSeconds) => (double)step / TotalSteps;

    /// <inheritdoc/>
    public override bool IsOver(long step, double elapsedSeconds) => step >= TotalSteps;

    /// <inheritdoc/>
    public override double RateAt(long step, double elapsedSeconds)
    {
        if (step < WarmupSteps) return BaseRate * Warm(step);
        return BaseRate * Cosine((double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps));
    }
}

/// <summary>
/// A wall-clock budget: the cosine follows the training time spent, so the rate reaches 0 when
/// <see cref="TrainingSeconds"/> are used, however fast the machine or the steps are (a slow patch costs steps, not the
/// schedule's shape). Elapsed time is the run's own, carried across resumes, so a resumed run continues the same schedule.
/// </summary>
public sealed record TimeBudgetSchedule(double BaseRate, long WarmupSteps, double TrainingSeconds) : TrainingSchedule(BaseRate, WarmupSteps)
{
    /// <inheritdoc/>
    public override double Progress(long step, double elapsedSeconds) => Math.Clamp(elapsedSeconds / TrainingSeconds, 0, 1);

    /// <inheritdoc/>
    public override bool IsOver(long step, double elapsedSeconds) => elapsedSeconds >= TrainingSeconds;

    /// <inheritdoc/>
    public override double RateAt(long step, double elapsedSeconds) => BaseRate * Warm(step) * Cosine(Progress(step, elapsedSeconds));
}

/// <summary>
/// What a time-budget run needs besides its options: when the run started (the budget counts from there, data loading
/// included) and how long its evaluation will take, which is kept out of the training time.
/// </summary>
public sealed record RunBudget(DateTime StartedUtc, Func<PretrainedModel, double> EvaluationSeconds)
{
    /// <summary>The training seconds a budget of <paramref name="minutes"/> leaves, or a one-line error when it leaves none.</summary>
    public double TrainingSeconds(double minutes, PretrainedModel model, TextWriter log)
    {
        double spent = (DateTime.UtcNow - StartedUtc).TotalSeconds, evaluation = EvaluationSeconds(model);
        double training = minutes * 60 - spent - evaluation;
        string budget = Configuration.SettingText.Duration(minutes);
        if (training < 1)
            throw new ConicException($"--time-budget {budget}: start-up took {spent:F0} s and evaluation needs about {evaluation:F0} s, " +
                                     $"which leaves no time to train; give at least {Configuration.SettingText.Duration((spent + evaluation) / 60 + 1)}");
        log.WriteLine($"time budget {budget}: training for {training / 60:F1} min, after {spent:F0} s of start-up and before about {evaluation:F0} s of evaluation");
        return training;
    }
}
