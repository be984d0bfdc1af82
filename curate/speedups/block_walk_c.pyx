# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The block segmenter of ``curate.blocks`` as one C walk over the libxml2 tree lxml parsed (a speed-up).

``curate.blocks`` cuts a page into blocks with an XSLT stylesheet and reads its output string in
Python; this walk applies the same templates to the same ``xmlNode`` tree, node by node, and
collapses whitespace as it goes, so no string is written and read again. Built against lxml's
public C API (``lxml.includes.etreepublic``); ``curate.speedups.block_walk`` checks the lxml version
before using it. Every rule below names the template of ``curate.blocks.stylesheet`` it mirrors.
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport strcmp
from cpython.unicode cimport Py_UNICODE_ISSPACE, PyUnicode_FromKindAndData

cimport lxml.includes.etreepublic as cetree
from lxml.includes.tree cimport xmlAttr, xmlNode

cdef object etree
from lxml import etree

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
    CACHE = 256  # distinct tag names remembered per walk (names are interned in the document's dict)

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
    cdef list texts
    cdef const void* cache_names[CACHE]
    cdef int cache_categories[CACHE]

    def __cinit__(self, dict categories, bint clean):
        self.categories, self.clean = categories, clean
        self.run.item = sizeof(Py_UCS4)
        self.parents.item = self.link_chars.item = self.block_frame.item = self.stack.item = sizeof(int64_t)
        self.nodes.item = sizeof(void*)
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


def walk_blocks(cetree._Element root, dict categories, bint clean):
    """(texts, link characters, frame per block, parent per frame, the frames' nodes as a ``Frames``) of the
    document holding ``root``; raises :class:`GiveUp` where the reference path must run instead."""
    cdef Walk walk = Walk(categories, clean)
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
    cdef Py_ssize_t i
    cdef int64_t* parents = <int64_t*>walk.parents.data
    cdef int64_t* frames = <int64_t*>walk.block_frame.data
    cdef int64_t* links = <int64_t*>walk.link_chars.data
    return (
        walk.texts,
        [links[i] for i in range(walk.link_chars.size)],
        [frames[i] for i in range(walk.block_frame.size)],
        [parents[i] for i in range(walk.parents.size)],
        Frames(root, walk),
    )


cdef class Frames:
    """The frames' elements, kept with the document they belong to, for their headers on demand."""

    cdef object root  # keeps the document (and so the nodes) alive
    cdef Buffer nodes
    cdef bint clean

    def __cinit__(self, root, Walk walk):
        self.root, self.clean = root, walk.clean
        self.nodes = walk.nodes
        walk.nodes.data = NULL  # handed over
        walk.nodes.size = walk.nodes.capacity = 0

    def __dealloc__(self):
        free(self.nodes.data)

    def __len__(self):
        return self.nodes.size

    def __getitem__(self, Py_ssize_t frame):
        """The frame's header exactly as the stylesheet writes it (see ``curate.blocks.frame_header``)."""
        if not 0 <= frame < self.nodes.size:
            raise IndexError(frame)
        cdef xmlNode* node = (<xmlNode**>self.nodes.data)[frame]
        cdef str tag = (<bytes>node.name).decode("utf-8")
        if node.properties == NULL:  # <xsl:if test="@*">
            return tag
        cdef list parts = [tag]
        for name in (b"class", b"id", b"role", b"itemprop", b"style"):
            parts.append(self.value(node, name))
        # @aria-hidden='true' compares the value as it is, markers and all
        if find_attribute(node, b"hidden") != NULL or raw_value(find_attribute(node, b"aria-hidden")) == "true":
            parts.append("")
        return "\ufdd1".join(parts)

    cdef str value(self, xmlNode* node, const char* name):
        """String value of an attribute ("" when absent), marker characters deleted when clean."""
        cdef str value = raw_value(find_attribute(node, name))
        for marker in "\ufdd0\ufdd1\ufdd2\ufdd3\ufdd4\ufdd5":
            if marker in value:
                if not self.clean:
                    raise GiveUp("marker character on the plain path")
                value = value.replace(marker, "")
        return value


cdef str raw_value(xmlAttr* attribute):
    """String value of an attribute node: its text children joined; "" when there is none."""
    if attribute == NULL:
        return ""
    cdef bytes data = b""
    cdef xmlNode* child = attribute.children
    while child != NULL:
        if child.type != 3:
            raise GiveUp("attribute value is not plain text")
        if child.content != NULL:
            data += <bytes>child.content
        child = child.next
    return data.decode("utf-8")


cdef xmlAttr* find_attribute(xmlNode* node, const char* name) noexcept:
    cdef xmlAttr* attribute = node.properties
    while attribute != NULL:
        if attribute.ns == NULL and strcmp(<const char*>attribute.name, name) == 0:
            return attribute
        attribute = attribute.next
    return NULL
