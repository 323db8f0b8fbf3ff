using System.Text;

namespace Conic.Export;

/// <summary>
/// The few protocol-buffer encodings an ONNX file needs (varints, little-endian floats, length-delimited fields):
/// enough to write a model without a protobuf library. Nested messages are built in their own writer and
/// embedded with <see cref="Message"/>.
/// </summary>
sealed class ProtobufWriter
{
    const int VarintType = 0, Fixed32Type = 5, LengthDelimitedType = 2;

    readonly MemoryStream _buffer = new();

    public ProtobufWriter Int(int field, long value)
    {
        Tag(field, VarintType);
        Varint(unchecked((ulong)value));
        return this;
    }

    public ProtobufWriter Float(int field, float value)
    {
        Tag(field, Fixed32Type);
        _buffer.Write(BitConverter.GetBytes(value));
        return this;
    }

    public ProtobufWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtobufWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, LengthDelimitedType);
        Varint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    public ProtobufWriter Message(int field, ProtobufWriter message) => Bytes(field, message.ToArray());

    /// <summary>A repeated int64 in the packed encoding (one length-delimited field).</summary>
    public ProtobufWriter PackedInts(int field, IEnumerable<long> values)
    {
        var packed = new ProtobufWriter();
        foreach (long value in values) packed.Varint(unchecked((ulong)value));
        return Bytes(field, packed.ToArray());
    }

    public byte[] ToArray() => _buffer.ToArray();

    void Tag(int field, int wireType) => Varint((ulong)((field << 3) | wireType));

    void Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _buffer.WriteByte((byte)value);
    }
}
