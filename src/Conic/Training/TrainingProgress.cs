namespace Conic.Training;

/// <summary>
/// Where a pretraining run is, reported after every step (<see cref="Epoch"/> still running) and at the end of every
/// epoch (<see cref="Metrics"/> set: that epoch's row of metrics.csv, with its loss terms and monitor accuracy).
/// </summary>
/// <param name="Loss">The mean loss of the epoch so far (this rank's, during the epoch; all ranks' at its end).</param>
/// <param name="Remaining">The time the run still needs: the rest of its time budget, or its steps at this epoch's speed.</param>
public sealed record TrainingProgress(int Epoch, int StepInEpoch, int StepsPerEpoch, long Step, double Loss, double ImagesPerSecond,
                                      TimeSpan Remaining, EpochMetrics? Metrics = null);
