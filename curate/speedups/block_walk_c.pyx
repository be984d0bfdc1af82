# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The block segmenter of ``curate.blocks`` as one C walk over the libxml2 tree lxml parsed (a speed-up).

``curate.blocks`` cuts a page into blocks with an XSLT stylesheet and reads its output string in
Python; this walk applies the same templates to the same ``xmlNode`` tree, node by node, and
collapses whitespace as it goes, so no string is written and read again. Built against lxml's
public C API (``lxml.includes.etreepublic``); ``curate.speedups.block_walk`` checks the lxml version
before using it. Every rule below names the template of ``curate.blocks.stylesheet`` it mirrors.
"""

from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memcpy, strcmp, strlen
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport PyObject
from cpython.unicode cimport Py_UNICODE_ISSPACE, PyUnicode_FromKindAndData

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(object value)
    int PyGC_Disable()  # Python 3.10+: the previous state
    int PyGC_Enable()
    int PyUnicode_KIND(object text)
    void* PyUnicode_DATA(object text)
    Py_UCS4 PyUnicode_READ(int kind, const void* data, Py_ssize_t index) noexcept
    Py_ssize_t PyUnicode_GET_LENGTH(object text)

cimport lxml.includes.etreepublic as cetree
from lxml.includes.tree cimport xmlAttr, xmlNode

cdef object etree
from lxml import etree
import numpy as np

cetree.import_lxml__etree()

BUILT_AGAINST_LXML = (<bytes>cetree.LXML_VERSION_STRING).decode("ascii")

# template categories (the XSLT's match patterns); the tag -> category dict comes from curate.blocks
cdef enum:
    OTHER = 0  # match="*": children, then a space
    SKIP = 1  # skipped tags: nothing
    BR = 2  # a newline
    BLOCK = 3  # frame open, children, frame close
    INLINE = 4  # children
    LINK = 5  # <a>: children in link mode
    MAX_TOKENS = 8  # curate.blocks.MAX_TOKENS_PER_ATTRIBUTE, checked by curate.speedups.block_walk
    CACHE = 256  # distinct tag names remembered per walk (names are interned in the document's dict)

MAX_TOKENS_PER_ATTRIBUTE = MAX_TOKENS
CATEGORIES = {"other": OTHER, "skip": SKIP, "br": BR, "block": BLOCK, "inline": INLINE, "link": LINK}

cdef Py_UCS4 BAD = 0xFFFFFFFF


class GiveUp(Exception):
    """The tree holds something this walk does not mirror (a namespace, an entity reference, a marker
    character on the plain path, invalid UTF-8): the caller runs the reference path for this page."""


cdef struct Buffer:
    void* data
    Py_ssize_t size
    Py_ssize_t capacity
    Py_ssize_t item


cdef int grow(Buffer* buf, Py_ssize_t needed) except -1:
    cdef Py_ssize_t capacity = buf.capacity * 2 if buf.capacity else 256
    cdef void* data
    while capacity < needed:
        capacity *= 2
    data = realloc(buf.data, capacity * buf.item)
    if data == NULL:
        raise MemoryError()
    buf.data, buf.capacity = data, capacity
    return 0


cdef inline int push64(Buffer* buf, int64_t value) except -1:
    if buf.size >= buf.capacity:
        grow(buf, buf.size + 1)
    (<int64_t*>buf.data)[buf.size] = value
    buf.size += 1
    return 0


cdef inline int push_pointer(Buffer* buf, void* value) except -1:
    if buf.size >= buf.capacity:
        grow(buf, buf.size + 1)
    (<void**>buf.data)[buf.size] = value
    buf.size += 1
    return 0


cdef inline Py_UCS4 next_code_point(const unsigned char* s, Py_ssize_t* at) noexcept nogil:
    """The code point at s[at[0]] (UTF-8, as libxml2 stores text), advancing at; BAD on invalid bytes."""
    cdef Py_ssize_t i = at[0]
    cdef unsigned int c = s[i]
    cdef unsigned int c1, c2, c3
    if c < 0x80:
        at[0] = i + 1
        return c
    if c < 0xC2:
        return BAD
    c1 = s[i + 1]
    if (c1 & 0xC0) != 0x80:
        return BAD
    if c < 0xE0:
        at[0] = i + 2
        return ((c & 0x1F) << 6) | (c1 & 0x3F)
    c2 = s[i + 2]
    if (c2 & 0xC0) != 0x80:
        return BAD
    if c < 0xF0:
        c = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (c2 & 0x3F)
        if c < 0x800 or (0xD800 <= c <= 0xDFFF):
            return BAD
        at[0] = i + 3
        return c
    c3 = s[i + 3]
    if (c3 & 0xC0) != 0x80 or c > 0xF4:
        return BAD
    c = ((c & 0x07) << 18) | ((c1 & 0x3F) << 12) | ((c2 & 0x3F) << 6) | (c3 & 0x3F)
    if c < 0x10000 or c > 0x10FFFF:
        return BAD
    at[0] = i + 4
    return c


cdef inline bint is_marker(Py_UCS4 c) noexcept nogil:
    return 0xFDD0 <= c <= 0xFDD5


cdef class Walk:
    """State of one walk: the run of text being collected (whitespace already collapsed) and the frames so far."""

    cdef dict categories
    cdef bint clean
    cdef Buffer run  # Py_UCS4 code points of the current run, collapsed, no leading space
    cdef bint pending_space
    cdef int64_t run_links
    cdef int64_t current  # frame open at this point, -1 for none
    cdef Buffer parents  # int64 per frame
    cdef Buffer nodes  # xmlNode* per frame
    cdef Buffer stack  # category (int64) per element whose children are being walked
    cdef Buffer link_chars  # int64 per block
    cdef Buffer block_frame  # int64 per block
    cdef Buffer key  # bytes of the header cache's key
    cdef list texts
    cdef const void* cache_names[CACHE]
    cdef int cache_categories[CACHE]

    def __cinit__(self, dict categories, bint clean):
        self.categories, self.clean = categories, clean
        self.run.item = sizeof(Py_UCS4)
        self.parents.item = self.link_chars.item = self.block_frame.item = self.stack.item = sizeof(int64_t)
        self.nodes.item = sizeof(void*)
        self.key.item = 1
        self.current = -1
        self.texts = []
        cdef int i
        for i in range(CACHE):
            self.cache_names[i] = NULL

    def __dealloc__(self):
        free(self.run.data)
        free(self.parents.data)
        free(self.nodes.data)
        free(self.stack.data)
        free(self.link_chars.data)
        free(self.block_frame.data)
        free(self.key.data)

    cdef int category(self, xmlNode* node) except -1:
        """The template that matches an element: by exact name, as libxslt matches it (no namespace)."""
        if node.ns != NULL:
            raise GiveUp("element in a namespace")
        cdef size_t slot = (<size_t>node.name >> 4) % CACHE
        cdef size_t probe
        for probe in range(CACHE):
            if self.cache_names[slot] == <const void*>node.name:
                return self.cache_categories[slot]
            if self.cache_names[slot] == NULL:
                break
            slot = (slot + 1) % CACHE
        cdef int found = self.categories.get(<bytes>node.name, OTHER)
        if self.cache_names[slot] == NULL:
            self.cache_names[slot] = <const void*>node.name
            self.cache_categories[slot] = found
        return found

    cdef int end_run(self) except -1:
        """A frame opens or closes here: the text collected so far is a block of the current frame, if any."""
        if self.run.size:
            self.texts.append(PyUnicode_FromKindAndData(4, self.run.data, self.run.size))
            push64(&self.link_chars, min(self.run_links, <int64_t>self.run.size))
            push64(&self.block_frame, self.current)
        self.run.size = 0
        self.pending_space = False
        self.run_links = 0
        return 0

    cdef inline int add_char(self, Py_UCS4 c) except -1:
        """One character of output: whitespace runs become one space, none at the run's start (SPACES, strip)."""
        if Py_UNICODE_ISSPACE(c):
            self.pending_space = self.run.size > 0
            return 0
        if self.run.size + 2 > self.run.capacity:
            grow(&self.run, self.run.size + 2)
        if self.pending_space:
            (<Py_UCS4*>self.run.data)[self.run.size] = 32
            self.run.size += 1
            self.pending_space = False
        (<Py_UCS4*>self.run.data)[self.run.size] = c
        self.run.size += 1
        return 0

    cdef int add_text(self, const unsigned char* s, bint in_link) except -1:
        """match="text()": the node's text (marker characters deleted when clean); in a link, its stripped length counts."""
        cdef Py_ssize_t at = 0
        cdef Py_ssize_t kept = 0, first = -1, last = -1
        cdef Py_UCS4 c
        if s == NULL:
            return 0
        while s[at]:
            c = next_code_point(s, &at)
            if c == BAD:
                raise GiveUp("invalid UTF-8 in a text node")
            if is_marker(c):
                if not self.clean:
                    raise GiveUp("marker character on the plain path")
                continue
            if not Py_UNICODE_ISSPACE(c):
                if first < 0:
                    first = kept
                last = kept
            kept += 1
            self.add_char(c)
        if in_link and first >= 0:
            self.run_links += last - first + 1
        return 0

    cdef int enter(self, xmlNode* node, int links) except -2:
        """Apply the template for a node; the element's category when its children are to be walked, else -1."""
        cdef int kind
        if node.type == 3 or node.type == 4:  # text, CDATA
            self.add_text(<const unsigned char*>node.content, links > 0)
            return -1
        if node.type == 7 or node.type == 8:  # processing instruction, comment: the built-in rule writes nothing
            return -1
        if node.type != 1:
            raise GiveUp(f"node type {node.type}")
        kind = self.category(node)
        if kind == SKIP:
            return -1
        if kind == BR:
            self.add_char(10)
            return -1
        if kind == BLOCK:
            self.end_run()
            push64(&self.parents, self.current)
            push_pointer(&self.nodes, <void*>node)
            self.current = self.parents.size - 1
        if node.children == NULL:
            self.leave(kind)
            return -1
        return kind

    cdef int leave(self, int kind) except -1:
        """The end of an element's template, after its children."""
        if kind == BLOCK:
            self.end_run()
            self.current = (<int64_t*>self.parents.data)[self.current]
        elif kind == OTHER:
            self.add_char(32)
        return 0

    cdef int walk(self, xmlNode* top) except -1:
        """Apply templates to ``top`` and its descendants in document order, without recursion."""
        cdef xmlNode* node = top
        cdef int kind
        cdef int links = 0
        while True:
            kind = self.enter(node, links)
            if kind >= 0:
                push64(&self.stack, kind)
                links += kind == LINK
                node = node.children
                continue
            while node != top and node.next == NULL:
                node = node.parent
                self.stack.size -= 1
                kind = <int>(<int64_t*>self.stack.data)[self.stack.size]
                links -= kind == LINK
                self.leave(kind)
            if node == top:
                return 0
            node = node.next


cdef xmlNode* first_body(xmlNode* document_child) noexcept:
    """(*/body)[1]: the first ``body`` child of a top-level element, or NULL."""
    cdef xmlNode* top = document_child
    cdef xmlNode* child
    while top != NULL:
        if top.type == 1:
            child = top.children
            while child != NULL:
                if child.type == 1 and child.ns == NULL and strcmp(<const char*>child.name, b"body") == 0:
                    return child
                child = child.next
        top = top.next
    return NULL


cdef class Rules:
    """What the walk takes from ``curate.blocks``: the tag table, ``FrameHeader``, the hidden-style test."""

    cdef dict categories
    cdef object header_type  # curate.blocks.FrameHeader
    cdef object hidden_style  # curate.blocks.HIDDEN_STYLE.search
    cdef readonly dict headers  # what the header depends on (bytes) -> FrameHeader, as frame_header's lru_cache
    cdef Py_ssize_t limit

    def __init__(self, dict categories, header_type, hidden_style, Py_ssize_t limit=1 << 15):
        self.categories, self.header_type, self.hidden_style = categories, header_type, hidden_style
        self.headers, self.limit = {}, limit


def walk_blocks(cetree._Element root, Rules rules, bint clean):
    """The fields of ``curate.blocks.PageBlocks`` for the document holding ``root``, in field order (one pass of
    the stylesheet: the caller runs the ``<noscript>`` pass); raises :class:`GiveUp` where the reference must run."""
    # Automatic garbage collection is paused while the page's tens of thousands of frozensets and tuples
    # are made (none of them in a reference cycle), so that they do not set off collections of the whole
    # heap page after page; the young ones are collected as usual once it is back on. The GIL is held
    # throughout (no Python code runs here), so no other thread sees the pause.
    cdef int collecting = PyGC_Disable()
    try:
        return walk_page(root, rules, clean)
    finally:
        if collecting:
            PyGC_Enable()


cdef tuple walk_page(cetree._Element root, Rules rules, bint clean):
    cdef Walk walk = Walk(rules.categories, clean)
    cdef xmlNode* top = first_body(root._c_node.doc.children)
    if top != NULL:
        walk.walk(top)
    else:
        top = root._c_node.doc.children
        while top != NULL:  # select="*"
            if top.type == 1:
                walk.walk(top)
            top = top.next
    walk.end_run()
    return (walk.texts, as_array(&walk.link_chars), as_array(&walk.block_frame)) + frames_above(walk, rules)


cdef object as_array(Buffer* buf):
    cdef object array = np.empty(buf.size, dtype=np.int64)
    cdef int64_t[::1] view = array
    if buf.size:
        memcpy(&view[0], buf.data, buf.size * sizeof(int64_t))
    return array


cdef tuple frames_above(Walk walk, Rules rules):
    """``curate.blocks.frames_above``: parent, depth, hidden, header, inherited ids and totals per frame."""
    cdef Py_ssize_t count = walk.parents.size
    parent_array, depth_array = as_array(&walk.parents), np.zeros(count, dtype=np.int64)
    hidden_array = np.zeros(count, dtype=np.uint8)
    chars_array, links_array, blocks_array = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    cdef list headers = [None] * count, inherited = [None] * count
    cdef Py_ssize_t block, frame
    cdef int64_t* parent = <int64_t*>walk.parents.data
    cdef int64_t* block_frame = <int64_t*>walk.block_frame.data
    cdef unsigned char* needed = <unsigned char*>calloc(count + 1, 1)  # the frames with text below them
    if needed == NULL:
        raise MemoryError()
    try:
        for block in range(walk.block_frame.size):
            frame = block_frame[block]
            while frame >= 0 and not needed[frame]:
                needed[frame] = 1
                frame = parent[frame]
        frame_headers(walk, rules, needed, headers, inherited, depth_array, hidden_array)
        frame_totals(walk, needed, chars_array, links_array, blocks_array)
    finally:
        free(needed)
    return (parent_array, depth_array, hidden_array.view(np.bool_), headers, inherited, chars_array, links_array, blocks_array)


cdef int frame_headers(
    Walk walk, Rules rules, unsigned char* needed, list headers, list inherited, int64_t[::1] depth, unsigned char[::1] hidden
) except -1:
    """Header, inherited ids, hidden and depth of each needed frame, parents before children."""
    cdef int64_t* parent = <int64_t*>walk.parents.data
    cdef xmlNode** nodes = <xmlNode**>walk.nodes.data
    cdef dict unions = {}  # (id of the parent's set, id of the header's set) -> their union, for this page
    cdef Py_ssize_t frame, above
    for frame in range(walk.parents.size):
        if not needed[frame]:
            continue
        header = headers[frame] = cached_header(nodes[frame], rules, walk.clean, &walk.key)
        added, own_hidden = header[3], <bint>header[4]
        above = parent[frame]
        if above < 0:
            inherited[frame], hidden[frame] = added, own_hidden
            continue
        upper = inherited[above]
        if added <= upper:
            inherited[frame] = upper
        else:  # siblings with the same header under one parent share one union (equal sets, one object)
            key = (<object><size_t><PyObject*>upper << 64) | <size_t><PyObject*>added
            merged = unions.get(key)
            if merged is None:
                merged = unions[key] = untracked(upper | added)
            inherited[frame] = merged
        hidden[frame] = hidden[above] != 0 or own_hidden
        depth[frame] = depth[above] + 1
    return 0


cdef int frame_totals(Walk walk, unsigned char* needed, int64_t[::1] chars, int64_t[::1] links, int64_t[::1] blocks) except -1:
    """Characters, link characters and blocks below each needed frame."""
    cdef int64_t* parent = <int64_t*>walk.parents.data
    cdef int64_t* block_frame = <int64_t*>walk.block_frame.data
    cdef int64_t* block_links = <int64_t*>walk.link_chars.data
    cdef Py_ssize_t frame, above, block
    for block in range(walk.block_frame.size):
        frame = block_frame[block]
        if frame >= 0:
            chars[frame] += len(<str>walk.texts[block])
            links[frame] += block_links[block]
            blocks[frame] += 1
    for frame in range(walk.parents.size - 1, -1, -1):  # children before parents
        above = parent[frame]
        if needed[frame] and above >= 0:
            chars[above] += chars[frame]
            links[above] += links[frame]
            blocks[above] += blocks[frame]
    return 0


cdef object cached_header(xmlNode* node, Rules rules, bint clean, Buffer* key):
    """The element's FrameHeader, from the cache when an element with the same tag and attribute values was seen."""
    cdef xmlAttr* attribute
    cdef Py_ssize_t start
    cdef int64_t length
    key.size = 0
    append_bytes(key, <const char*>node.name)
    append_bytes(key, b"\x01c" if clean else b"\x01p")
    if node.properties != NULL:
        for name in (b"class", b"id", b"role", b"itemprop", b"style", b"aria-hidden"):
            attribute = find_attribute(node, name)
            start = key.size
            append_bytes(key, b"\x01\x01\x01\x01\x01\x01\x01\x01")  # room for the value's length: no two keys alike
            if attribute != NULL:
                append_value(key, attribute)
            length = key.size - start - 8
            memcpy(<char*>key.data + start, &length, 8)
        append_bytes(key, b"\x01h" if find_attribute(node, b"hidden") != NULL else b"\x01v")
    cdef bytes known = PyBytes_FromStringAndSize(<const char*>key.data, key.size)
    header = rules.headers.get(known)
    if header is None:
        header = frame_header(node, rules, clean)
        if len(rules.headers) >= rules.limit:
            rules.headers.clear()
        rules.headers[known] = header
    return header


cdef int append_bytes(Buffer* buf, const char* data) except -1:
    cdef size_t length = strlen(data)
    if buf.size + <Py_ssize_t>length > buf.capacity:
        grow(buf, buf.size + length)
    memcpy(<char*>buf.data + buf.size, data, length)
    buf.size += length
    return 0


cdef int append_value(Buffer* buf, xmlAttr* attribute) except -1:
    cdef xmlNode* child = attribute.children
    while child != NULL:
        if child.type != 3:
            raise GiveUp("attribute value is not plain text")
        if child.content != NULL:
            append_bytes(buf, <const char*>child.content)
        child = child.next
    return 0


cdef object frame_header(xmlNode* node, Rules rules, bint clean):
    """``curate.blocks.frame_header`` of the header the stylesheet would write for this element."""
    cdef bytes tag = <bytes>node.name
    cdef list own = [], child = [hash_bytes(CRC_PT, tag)], added = [hash_bytes(CRC_A, tag)]
    cdef bint hidden = False
    cdef bytes value
    if node.properties != NULL:  # <xsl:if test="@*">
        for name in (b"class", b"id", b"role", b"itemprop"):
            value = attribute_bytes(find_attribute(node, name))
            if value:
                add_tokens(value, clean, own, child, added)
        # @hidden or @aria-hidden='true' (the value as it is, markers and all)
        hidden = find_attribute(node, b"hidden") != NULL or attribute_bytes(find_attribute(node, b"aria-hidden")) == b"true"
        if not hidden:
            value = attribute_bytes(find_attribute(node, b"style"))
            if value:
                style = value.decode("utf-8")
                for marker in MARKER_CHARS:
                    if marker in style:
                        if not clean:
                            raise GiveUp("marker character on the plain path")
                        style = style.replace(marker, "")
                hidden = rules.hidden_style(style) is not None
    # tuple.__new__ builds the NamedTuple as its own constructor does, without a Python-level call
    header = tuple.__new__(rules.header_type, (tag.decode("utf-8"), tuple(own), tuple(child), untracked(frozenset(added)), hidden))
    return untracked(header)


cdef inline object untracked(object value):
    """The object, no longer followed by the cycle collector: a frozenset of ints, or a FrameHeader of str,
    tuples of ints, such a frozenset and a bool, can hold no reference cycle (CPython does the same for
    tuples and dicts of atomic values). A page makes tens of thousands of them; tracked, they cost the
    collector more than the walk costs itself."""
    PyObject_GC_UnTrack(value)
    return value


MARKER_CHARS = "\ufdd0\ufdd1\ufdd2\ufdd3\ufdd4\ufdd5"


cdef int add_tokens(bytes value, bint clean, list own, list child, list added) except -1:
    """``curate.blocks.value_tokens`` of one attribute value, hashed with the "c0:", "c1:" and "c:" prefixes.

    The value's first 200 characters, split before a capital that follows a small letter (ASCII only,
    as CAMEL), lower-cased (of all non-ASCII characters only U+0130 and U+212A lower-case to ASCII
    letters, "i" + U+0307 and "k"), cut into runs of [a-z0-9]; runs of 2-24 characters that are not
    all digits are the tokens, at most 8.
    """
    cdef const unsigned char* s = <const unsigned char*>value
    cdef Py_ssize_t at = 0, seen = 0, length = 0
    cdef int kept = 0
    cdef bint digits = True, after_small = False, split
    cdef uint32_t c
    cdef unsigned char token[32]
    cdef unsigned char lower
    while s[at] and kept < MAX_TOKENS:
        c = next_code_point(s, &at)
        if c == BAD:
            raise GiveUp("invalid UTF-8 in an attribute")
        if is_marker(c):
            if not clean:
                raise GiveUp("marker character on the plain path")
            continue
        if seen == 200:
            break
        seen += 1
        split = after_small and 65 <= c <= 90
        after_small = 97 <= c <= 122
        lower = 0
        if 65 <= c <= 90:
            lower = <unsigned char>(c + 32)
        elif 97 <= c <= 122 or 48 <= c <= 57:
            lower = <unsigned char>c
        elif c == 0x212A:
            lower = 107  # KELVIN SIGN -> "k"
        elif c == 0x130:
            lower = 105  # LATIN CAPITAL LETTER I WITH DOT ABOVE -> "i" + U+0307, which ends the run
        if split or lower == 0:
            kept += end_token(token, length, digits, own, child, added)
            length, digits = 0, True
        if lower:
            if length < 32:
                token[length] = lower
            length += 1
            digits = digits and 48 <= lower <= 57
            if c == 0x130:
                kept += end_token(token, length, digits, own, child, added)
                length, digits = 0, True
    if kept < MAX_TOKENS:
        end_token(token, length, digits, own, child, added)
    return 0


cdef int end_token(unsigned char* token, Py_ssize_t length, bint digits, list own, list child, list added) except -1:
    """Hash a finished run when it is a token (2-24 characters, not all digits); 1 if it was."""
    if length < 2 or length > 24 or digits:
        return 0
    own.append(crc_finish(crc_update(CRC_C0, token, length)))
    child.append(crc_finish(crc_update(CRC_C1, token, length)))
    added.append(crc_finish(crc_update(CRC_C, token, length)))
    return 1


cdef bytes attribute_bytes(xmlAttr* attribute):
    """String value of an attribute node as UTF-8: its text children joined; b"" when there is none."""
    if attribute == NULL:
        return b""
    cdef xmlNode* child = attribute.children
    if child != NULL and child.next == NULL and child.type == 3 and child.content != NULL:
        return <bytes>child.content  # the usual case: one text child
    cdef bytes data = b""
    while child != NULL:
        if child.type != 3:
            raise GiveUp("attribute value is not plain text")
        if child.content != NULL:
            data += <bytes>child.content
        child = child.next
    return data


cdef xmlAttr* find_attribute(xmlNode* node, const char* name) noexcept:
    cdef xmlAttr* attribute = node.properties
    while attribute != NULL:
        if attribute.ns == NULL and strcmp(<const char*>attribute.name, name) == 0:
            return attribute
        attribute = attribute.next
    return NULL


# CRC-32 (zlib's polynomial), so the ids are those of curate.blocks.hashed: crc32(prefix + token) & (buckets - 1)
cdef uint32_t CRC_TABLE[256]
cdef uint32_t HASH_MASK = 0


cdef void crc_table() noexcept:
    cdef uint32_t c, n, k
    for n in range(256):
        c = n
        for k in range(8):
            c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
        CRC_TABLE[n] = c


cdef inline uint32_t crc_update(uint32_t state, const unsigned char* data, Py_ssize_t length) noexcept:
    cdef Py_ssize_t i
    for i in range(length):
        state = CRC_TABLE[(state ^ data[i]) & 0xFF] ^ (state >> 8)
    return state


cdef inline int crc_finish(uint32_t state) noexcept:
    return <int>((state ^ 0xFFFFFFFF) & HASH_MASK)


cdef uint32_t crc_start(bytes prefix) noexcept:
    return crc_update(0xFFFFFFFF, <const unsigned char*>prefix, len(prefix))


cdef int hash_bytes(uint32_t prefix_state, bytes data) noexcept:
    return crc_finish(crc_update(prefix_state, <const unsigned char*>data, len(data)))


crc_table()
cdef uint32_t CRC_C0 = crc_start(b"c0:"), CRC_C1 = crc_start(b"c1:"), CRC_C = crc_start(b"c:")
cdef uint32_t CRC_PT = crc_start(b"pt:"), CRC_A = crc_start(b"a:")


def set_hash_buckets(int buckets):
    """``curate.blocks.HASH_BUCKETS`` (a power of two); set before the first walk."""
    global HASH_MASK
    HASH_MASK = buckets - 1


def hashed(str token):
    """``curate.blocks.hashed`` in C (for the tests)."""
    return hash_bytes(0xFFFFFFFF, token.encode("utf-8"))


def tokens(str value, bint clean=True):
    """The hashed "c0:" ids of ``curate.blocks.value_tokens(value)`` (for the tests)."""
    cdef list own = [], child = [], added = []
    add_tokens(value.encode("utf-8", "surrogatepass"), clean, own, child, added)
    return tuple(own)


cdef inline uint32_t lower_ascii(uint32_t c) noexcept:
    return c + 32 if 65 <= c <= 90 else c


cdef bint reference_at(int kind, const void* data, Py_ssize_t at, Py_ssize_t length) noexcept:
    """Whether ``x0*fdd[0-5]`` (any case) or ``0*6497[6-9]|0*6498[01]`` starts at ``at`` (just after "&#")."""
    cdef Py_UCS4 c
    if at < length and lower_ascii(PyUnicode_READ(kind, data, at)) == 120:  # x
        at += 1
        while at < length and PyUnicode_READ(kind, data, at) == 48:
            at += 1
        if at + 4 > length:
            return False
        c = PyUnicode_READ(kind, data, at + 3)
        return (
            lower_ascii(PyUnicode_READ(kind, data, at)) == 102
            and lower_ascii(PyUnicode_READ(kind, data, at + 1)) == 100
            and lower_ascii(PyUnicode_READ(kind, data, at + 2)) == 100
            and 48 <= c <= 53
        )
    while at < length and PyUnicode_READ(kind, data, at) == 48:
        at += 1
    if at + 5 > length:
        return False
    if not (PyUnicode_READ(kind, data, at) == 54 and PyUnicode_READ(kind, data, at + 1) == 52 and PyUnicode_READ(kind, data, at + 2) == 57):
        return False  # "649"
    c = PyUnicode_READ(kind, data, at + 4)
    if PyUnicode_READ(kind, data, at + 3) == 55:  # "6497[6-9]"
        return 54 <= c <= 57
    return PyUnicode_READ(kind, data, at + 3) == 56 and 48 <= c <= 49  # "6498[01]"


def has_markers(str text):
    """``curate.blocks.MARKERS_IN_HTML.search(text) is not None``: a marker character U+FDD0-U+FDD5, or a
    character reference to one (``&#xFDD0``, ``&#64976`` ... with any leading zeros, x/X and hex digits in any
    case; x, f and d have no other case partners in Unicode), in one scan of the code units."""
    cdef int kind = PyUnicode_KIND(text)
    cdef const void* data = PyUnicode_DATA(text)
    cdef Py_ssize_t i, length = PyUnicode_GET_LENGTH(text)
    cdef Py_UCS4 c
    for i in range(length):
        c = PyUnicode_READ(kind, data, i)
        if c == 38:  # &
            if i + 1 < length and PyUnicode_READ(kind, data, i + 1) == 35 and reference_at(kind, data, i + 2, length):
                return True
        elif 0xFDD0 <= c <= 0xFDD5:
            return True
    return False


# The token bag: curate.blocks.block_tokens (with inherited_sets) over a page's frames, one C loop per frame
# and per block instead of Python loops and np.unique. Objects are compared by identity, as the reference does.

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

cdef uint32_t CRC_T = crc_start(b"t:")
cdef tuple NO_IDS = ()


def block_tokens(const int64_t[::1] frame, const int64_t[::1] parent, list headers, list inherited, words):
    """The fields of ``curate.blocks.block_tokens(page, words)`` (heads, inherited, row_set, set_parent, set_added,
    row, words) from the page's ``frame``, ``parent``, ``headers`` and ``inherited``."""
    if parent.shape[0] != PyList_GET_SIZE(inherited) or PyList_GET_SIZE(headers) != PyList_GET_SIZE(inherited):
        raise ValueError("parent, headers and inherited differ in length")
    # the tens of thousands of tuples made here hold only ints: no collections of the heap meanwhile (see walk_blocks)
    cdef int collecting = PyGC_Disable()
    try:
        return token_bag(frame, parent, headers, inherited, words)
    finally:
        if collecting:
            PyGC_Enable()


cdef tuple token_bag(const int64_t[::1] frame, const int64_t[::1] parent, list headers, list inherited, words):
    cdef Py_ssize_t frames = PyList_GET_SIZE(inherited)
    set_of_array = np.full(frames, -1, dtype=np.int64)
    cdef int64_t[::1] set_of = set_of_array
    set_parent, set_added = inherited_set_tree(parent, inherited, set_of)
    rank_array = np.full(frames + 1, -1, dtype=np.int64)
    row_array = np.empty(frame.shape[0], dtype=np.int64)
    cdef int64_t[::1] rank = rank_array, row = row_array
    cdef Py_ssize_t block, at, rows = 0
    for block in range(frame.shape[0]):  # np.unique(frame, return_inverse=True): frames -1 ... frames - 1, sorted
        if frame[block] < -1 or frame[block] >= frames:
            raise IndexError("block in no frame of the page")
        rank[frame[block] + 1] = 0
    for at in range(frames + 1):
        if rank[at] == 0:
            rank[at] = rows
            rows += 1
    for block in range(frame.shape[0]):
        row[block] = rank[frame[block] + 1]
    cdef list heads = [], row_inherited = []
    row_set_array = np.empty(rows, dtype=np.int64)
    cdef int64_t[::1] row_set = row_set_array
    cdef Py_ssize_t f
    for at in range(frames + 1):
        if rank[at] < 0:
            continue
        f = at - 1
        if f < 0:
            heads.append(NO_IDS)
            row_inherited.append(frozenset())
            row_set[rank[at]] = -1
            continue
        heads.append(row_head(headers, parent, f))
        row_inherited.append(<object>PyList_GET_ITEM(inherited, f))
        row_set[rank[at]] = set_of[f]
    return heads, row_inherited, row_set_array, set_parent, set_added, row_array, words


cdef tuple row_head(list headers, const int64_t[::1] parent, Py_ssize_t frame):
    """(hashed "t:" + tag, the frame's own ids, its parent's child ids) as one tuple."""
    cdef tuple header = <tuple>PyList_GET_ITEM(headers, frame)
    cdef Py_ssize_t size
    cdef const char* tag = PyUnicode_AsUTF8AndSize(<str>PyTuple_GET_ITEM(header, 0), &size)
    cdef tuple own = <tuple>PyTuple_GET_ITEM(header, 1)
    cdef tuple above = <tuple>PyTuple_GET_ITEM(<tuple>PyList_GET_ITEM(headers, parent[frame]), 2) if parent[frame] >= 0 else NO_IDS
    cdef Py_ssize_t own_size = PyTuple_GET_SIZE(own), above_size = PyTuple_GET_SIZE(above), i
    cdef tuple head = PyTuple_New(1 + own_size + above_size)
    item = crc_finish(crc_update(CRC_T, <const unsigned char*>tag, size))
    Py_INCREF(item)
    PyTuple_SET_ITEM(head, 0, item)
    for i in range(own_size):
        item = <object>PyTuple_GET_ITEM(own, i)
        Py_INCREF(item)
        PyTuple_SET_ITEM(head, 1 + i, item)
    for i in range(above_size):
        item = <object>PyTuple_GET_ITEM(above, i)
        Py_INCREF(item)
        PyTuple_SET_ITEM(head, 1 + own_size + i, item)
    return untracked(head)


cdef tuple inherited_set_tree(const int64_t[::1] parent, list inherited, int64_t[::1] set_of):
    """``curate.blocks.inherited_sets``: (set_parent, set_added), and each frame's set index in ``set_of``.

    A frame that holds its parent's set object takes its index without a lookup; other sets are found by
    identity in an open-addressing table of object addresses (at most half full)."""
    cdef Py_ssize_t frames = PyList_GET_SIZE(inherited), frame, above, slot
    cdef size_t mask = 16
    while mask < <size_t>(2 * frames):
        mask *= 2
    mask -= 1
    cdef PyObject** keys = <PyObject**>calloc(mask + 1, sizeof(PyObject*))
    cdef int64_t* values = <int64_t*>calloc(mask + 1, sizeof(int64_t))
    cdef Buffer set_parent
    set_parent.data, set_parent.size, set_parent.capacity, set_parent.item = NULL, 0, 0, sizeof(int64_t)
    cdef list set_added = []
    cdef PyObject* ids
    if keys == NULL or values == NULL:
        free(keys)
        free(values)
        raise MemoryError()
    try:
        for frame in range(frames):
            ids = PyList_GET_ITEM(inherited, frame)
            if ids == <PyObject*>None:
                continue
            above = parent[frame]
            if above >= 0 and PyList_GET_ITEM(inherited, above) == ids and set_of[above] >= 0:
                set_of[frame] = set_of[above]
                continue
            slot = ((<size_t>ids >> 4) * <size_t>0x9E3779B97F4A7C15) >> 20 & mask
            while keys[slot] != NULL and keys[slot] != ids:
                slot = (slot + 1) & mask
            if keys[slot] == ids:
                set_of[frame] = values[slot]
                continue
            keys[slot], values[slot] = ids, set_parent.size
            set_of[frame] = set_parent.size
            if above < 0 or PyList_GET_ITEM(inherited, above) == <PyObject*>None:
                push64(&set_parent, -1)
                set_added.append(untracked(tuple(<object>ids)))
            else:
                upper = <object>PyList_GET_ITEM(inherited, above)
                push64(&set_parent, set_of[above] if set_of[above] >= 0 else set_index(keys, values, mask, <PyObject*>upper))
                set_added.append(untracked(tuple(<object>ids - upper)))
        return as_array(&set_parent), set_added
    finally:
        free(keys)
        free(values)
        free(set_parent.data)


cdef int64_t set_index(PyObject** keys, int64_t* values, size_t mask, PyObject* ids) except -1:
    """The index of a set seen before (``sets[id(upper)]`` of the reference: a KeyError if it was not)."""
    cdef size_t slot = ((<size_t>ids >> 4) * <size_t>0x9E3779B97F4A7C15) >> 20 & mask
    while keys[slot] != NULL:
        if keys[slot] == ids:
            return values[slot]
        slot = (slot + 1) & mask
    raise KeyError(<size_t>ids)
