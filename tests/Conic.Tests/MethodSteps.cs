using Conic.Methods;
using Conic.Training;

namespace Conic.Tests;

/// <summary>Training steps as the trainer takes them (SGD with momentum 0.9, weight decay 1e-4), on one fixed batch.</summary>
static class MethodSteps
{
    /// <summary>Each step's loss, for <paramref name="steps"/> steps on <paramref name="batch"/> at learning rate 0.05.</summary>
    public static List<float> Train(SslMethod method, TrainingBatch batch, int steps)
    {
        using var optimizer = new MomentumSgd(method.ParameterGroups(1e-4), 0.9);
        var losses = new List<float>();
        for (int step = 0; step < steps; step++)
        {
            optimizer.ZeroGrad();
            var loss = method.TrainingStep(batch);
            loss.Total.backward();
            optimizer.Step(0.05);
            method.AfterOptimizerStep(batch, loss);
            losses.Add(loss.Total.item<float>());
        }
        return losses;
    }
}
