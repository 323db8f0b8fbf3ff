using Conic.Distributed;
using static Conic.Runtime.KeptScalars;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Conic.Losses;

/// <summary>
/// DINO's self-distillation (Caron et al. 2021): the teacher's centred, sharpened distributions over K outputs are
/// the targets of the student's distributions of the other views.
/// </summary>
public static class DinoLosses
{
    /// <summary>The teacher's targets softmax((logits − center) / τ) [B, K], without gradient: centring keeps one output from taking over, a low τ sharpens.</summary>
    public static Tensor TeacherTargets(Tensor teacherLogits, Tensor center, double temperature)
    {
        using var noGrad = no_grad();
        return F.softmax(teacherLogits.sub(center).div(Kept(temperature)), 1);
    }

    /// <summary>
    /// The mean, over every pair of a teacher view i and a student view j ≠ i, of the batch mean of
    /// H(targets_i, softmax(student_j / τ_s)) = −Σ_k targets_ik · log softmax(student_j / τ_s)_k. Student views beyond
    /// the teacher's (small crops) pair with every teacher view.
    /// </summary>
    /// <param name="targets">The teacher's targets of its views [B, K] each (<see cref="TeacherTargets"/>), in the order of the first student views.</param>
    /// <param name="studentLogits">The student's logits of every view [B, K].</param>
    public static Tensor CrossViewEntropy(IReadOnlyList<Tensor> targets, IReadOnlyList<Tensor> studentLogits, double studentTemperature)
    {
        var logProbabilities = studentLogits.Select(s => F.log_softmax(s.div(Kept(studentTemperature)), 1)).ToArray();
        Tensor? total = null;
        int pairs = 0;
        for (int i = 0; i < targets.Count; i++)
            for (int j = 0; j < logProbabilities.Length; j++)
            {
                if (i == j) continue;
                var entropy = targets[i].mul(logProbabilities[j]).sum(1).mean().neg();
                total = total is null ? entropy : total.add(entropy, Kept(1));
                pairs++;
            }
        if (total is null) throw new ArgumentException("DINO needs at least two views");
        return total.div(Kept(pairs));
    }

    /// <summary>c ← m·c + (1 − m)·(mean of the teacher's logits over the batch of every rank), in place.</summary>
    public static void UpdateCenter(Tensor center, Tensor teacherLogits, double momentum, ProcessGroup processes)
    {
        using var noGrad = no_grad();
        using var batchSum = teacherLogits.sum(0, keepdim: true);
        processes.AllReduce(batchSum);
        center.mul_(Kept(momentum)).add_(batchSum.div_(Kept(teacherLogits.shape[0] * processes.Size)), alpha: Kept(1 - momentum));
    }

    /// <summary>The teacher's temperature at <paramref name="progress"/> (0–1): from <paramref name="start"/> up to <paramref name="end"/> linearly over the first <paramref name="warmup"/> of training, then flat.</summary>
    public static double TeacherTemperature(double start, double end, double warmup, double progress) =>
        warmup <= 0 || progress >= warmup ? end : start + (end - start) * Math.Max(progress, 0) / warmup;
}
