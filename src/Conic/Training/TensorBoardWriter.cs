using System.Text;

namespace Conic.Training;

/// <summary>
/// Writes scalar summaries as a TensorBoard event file (TFRecord framing of hand-encoded Event protobufs), so
/// <c>tensorboard --logdir runs</c> shows the curves without any Python or protobuf dependency here.
/// </summary>
public sealed class TensorBoardWriter : IDisposable
{
    readonly FileStream _stream;

    public TensorBoardWriter(string directory)
    {
        Directory.CreateDirectory(directory);
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        string path = Path.Combine(directory, $"events.out.tfevents.{(long)now}.{Environment.MachineName}.conic");
        _stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
        var header = new List<byte>();
        WriteDouble(header, 1, now);
        WriteBytes(header, 3, Encoding.UTF8.GetBytes("brain.Event:2"));
        WriteRecord(header.ToArray());
    }

    public void AddScalar(string tag, double value, long step)
    {
        var summaryValue = new List<byte>();
        WriteBytes(summaryValue, 1, Encoding.UTF8.GetBytes(tag));
        WriteFloat(summaryValue, 2, (float)value);
        var summary = new List<byte>();
        WriteBytes(summary, 1, summaryValue.ToArray());
        var ev = new List<byte>();
        WriteDouble(ev, 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
        WriteVarintField(ev, 2, (ulong)step);
        WriteBytes(ev, 5, summary.ToArray());
        WriteRecord(ev.ToArray());
    }

    /// <summary>An epoch's loss, terms, learning rate and speed under train/..., at its last step.</summary>
    public void Add(EpochMetrics metrics)
    {
        AddScalar("train/loss", metrics.Loss, metrics.Step);
        foreach (var (name, value) in metrics.Terms) AddScalar($"train/{name}", value, metrics.Step);
        AddScalar("train/lr", metrics.LearningRate, metrics.Step);
        AddScalar("train/images_per_second", metrics.ImagesPerSecond, metrics.Step);
        if (metrics.MonitorKnnTop1 is double knn) AddScalar("monitor/knn_top1", knn, metrics.Step);
        _stream.Flush();
    }

    public void Dispose() => _stream.Dispose();

    void WriteRecord(byte[] data)
    {
        byte[] length = BitConverter.GetBytes((ulong)data.Length);
        _stream.Write(length);
        _stream.Write(BitConverter.GetBytes(MaskedCrc(length)));
        _stream.Write(data);
        _stream.Write(BitConverter.GetBytes(MaskedCrc(data)));
    }

    static void WriteTag(List<byte> buffer, int field, int wireType) => WriteVarint(buffer, (ulong)((field << 3) | wireType));

    static void WriteVarint(List<byte> buffer, ulong value)
    {
        while (value >= 0x80)
        {
            buffer.Add((byte)(value | 0x80));
            value >>= 7;
        }
        buffer.Add((byte)value);
    }

    static void WriteVarintField(List<byte> buffer, int field, ulong value)
    {
        WriteTag(buffer, field, 0);
        WriteVarint(buffer, value);
    }

    static void WriteDouble(List<byte> buffer, int field, double value)
    {
        WriteTag(buffer, field, 1);
        buffer.AddRange(BitConverter.GetBytes(value));
    }

    static void WriteFloat(List<byte> buffer, int field, float value)
    {
        WriteTag(buffer, field, 5);
        buffer.AddRange(BitConverter.GetBytes(value));
    }

    static void WriteBytes(List<byte> buffer, int field, byte[] value)
    {
        WriteTag(buffer, field, 2);
        WriteVarint(buffer, (ulong)value.Length);
        buffer.AddRange(value);
    }

    /// <summary>TFRecord's CRC: CRC-32C, rotated right by 15 and offset by a constant.</summary>
    static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = Runtime.Crc32C.Compute(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }
}
