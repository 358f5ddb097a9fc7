/* The optional C accelerator of the flag check: rollout._core._speedups.
 *
 * Callables, each the exact counterpart of pure-Python code that stays the reference and the
 * fallback (rollout._core.native decides which one a Rollout gets):
 *
 *   Active     flags.active(name, user=None): rollout._core.evaluate's generated ``active``.
 *   UserCheck  one flag's check for a user: rollout._core.specialize's generated functions,
 *              every shape in one object (the steps a flag lacks are skipped by a flag test).
 *   Resolution one flag's OpenFeature resolution: rollout._core.decide's resolution functions.
 *   ResolveBoolean  RolloutProvider.resolve_boolean_details's two usual cases (the Python
 *              method, its __wrapped__, for the others), reading a ProviderState.
 *
 * Same reads, same order, same answers, same exceptions: the tests run against both
 * implementations (ROLLOUT_PURE_PYTHON=1 selects the Python one). What C saves is the
 * interpreter's work between the reads, and, for an int id or a short ASCII str id, the bucket
 * memo: CRC32 of a few bytes costs less than the memo's hash-table probe and the bucket object it
 * returns (both cold in memory for a user not checked a moment ago). Ids of any other kind take
 * the memo and rollout._core.bucketing.remember_crc32, exactly as the Python check does, so the
 * one formula that must never change is computed here only for the inputs where its bytes are
 * plainly the id's ASCII text.
 *
 * Active and ResolveBoolean carry Py_TPFLAGS_METHOD_DESCRIPTOR (Active is set on each Rollout's
 * own class as its ``active``, ResolveBoolean on RolloutProvider): CPython then calls them with
 * the instance as the first argument and makes no bound method, as for a Python function.
 *
 * Every object read out of a dict is a borrowed reference that Python code run meanwhile (a
 * predicate, an id property, a write on another thread while the GIL is released) can drop, so
 * a check takes its own reference before it calls anything.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <structmember.h>

#if PY_VERSION_HEX >= 0x030D0000
#define lookup_attr PyObject_GetOptionalAttr
#else
#define lookup_attr _PyObject_LookupAttr
#endif

/* CRC-32 (ISO-HDLC, zlib's crc32), one table, byte at a time: for short ids only (see
 * memo_id_length). */
static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[n] = c;
    }
}

static inline uint32_t
crc32_of(const unsigned char *bytes, Py_ssize_t length)
{
    uint32_t c = 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < length; i++) {
        c = crc_table[(c ^ bytes[i]) & 0xFF] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

/* What every check shares, read from rollout._core.bucketing and random when the module loads:
 * the process-wide memo and its filler, for the ids C leaves to them, and the other buckets. */
static PyObject *memo;          /* rollout._core.bucketing.crc32_memo (a dict) */
static PyObject *remember;      /* rollout._core.bucketing.remember_crc32 */
static PyObject *draw;          /* random.random */
static PyObject *randomized;    /* rollout._core.bucketing.randomized_bucket */
static PyObject *ruby;          /* rollout._core.bucketing.ruby_bucket */
static PyObject *randomize_kw;  /* ("randomize",) */
/* rollout._core.bucketing.MEMO_ID_LENGTH: the longest id the memo keeps, and the longest str id
 * whose CRC32 is computed here. A byte at a time, CRC32 waits on the byte before at every step:
 * past a hundred bytes or so zlib's, which does not, is the faster (ten times for 64 KB), and an
 * id from a request can be as long as the request's body (a megabyte, by default), checked
 * against every flag by an OFREP bulk evaluation. A longer id takes remember_crc32 as in the
 * Python check, without the memo lookup that cannot find it (which would hash it first). */
static Py_ssize_t memo_id_length;

/* The default bucket of an exact int or str id: CRC32 of its decimal or UTF-8 text. Returns 0
 * and sets *bucket, or -1 with an exception set. */
static int
default_bucket(PyObject *ident, uint64_t *bucket)
{
    PyObject *found;
    if (PyLong_CheckExact(ident)) {
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(ident, &overflow);
        if (!overflow && !(value == -1 && PyErr_Occurred())) {
            /* str(value), right to left. */
            unsigned char text[24];
            unsigned char *end = text + sizeof(text), *at = end;
            unsigned long long magnitude =
                value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
            do {
                *--at = (unsigned char)('0' + magnitude % 10);
                magnitude /= 10;
            } while (magnitude);
            if (value < 0) {
                *--at = '-';
            }
            *bucket = crc32_of(at, end - at);
            return 0;
        }
        if (PyErr_Occurred()) {
            return -1;
        }
    }
    else if (PyUnicode_CheckExact(ident)) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(ident) < 0) {
            return -1;
        }
#endif
        if (PyUnicode_GET_LENGTH(ident) > memo_id_length) {
            found = PyObject_CallOneArg(remember, ident);
            goto remembered;
        }
        if (PyUnicode_IS_ASCII(ident)) {
            *bucket = crc32_of(PyUnicode_DATA(ident), PyUnicode_GET_LENGTH(ident));
            return 0;
        }
    }
    /* A big int or a non-ASCII str: the memo, as the Python check reads it. */
    found = PyDict_GetItemWithError(memo, ident);
    if (found != NULL) {
        Py_INCREF(found);
    }
    else if (!PyErr_Occurred()) {
        found = PyObject_CallOneArg(remember, ident);
    }
remembered:
    if (found == NULL) {
        return -1;
    }
    *bucket = PyLong_AsUnsignedLongLong(found);
    Py_DECREF(found);
    return (*bucket == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *
crc32_bucket(PyObject *module, PyObject *ident)
{
    if (!PyLong_CheckExact(ident) && !PyUnicode_CheckExact(ident)) {
        PyErr_Format(PyExc_TypeError, "ident must be an exact str or int, got %R", ident);
        return NULL;
    }
    uint64_t bucket;
    if (default_bucket(ident, &bucket) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(bucket);
}

/* ---------------------------------------------------------------------------------------- */
/* UserCheck                                                                                 */

enum id_mode {
    ID_GETATTR,    /* getattr(user, attribute, user): no str or int has the attribute */
    ID_ATTRIBUTE,  /* a str or int user is its own id, else user.<attribute> */
    ID_GET_ID,     /* a str or int user is its own id, else get_id(user) */
};

enum bucket_kind { BUCKET_NONE, BUCKET_CRC32, BUCKET_RANDOMIZED, BUCKET_RUBY };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int id_mode;
    PyObject *attribute;  /* ID_GETATTR, ID_ATTRIBUTE */
    PyObject *get_id;     /* ID_GET_ID */
    PyObject *user_id;    /* refuses an id that is not a str or int, with the write's error */
    PyObject *excluded;   /* NULL when there are none */
    PyObject *users;      /* NULL when there are none */
    int time;
    double time_percentage;
    int everyone;
    int bucket_kind;
    uint64_t bound;
    PyObject *seed;
    PyObject *name;
    PyObject *predicates;  /* a tuple */
    PyObject *check;
    PyObject *on_group_error;
} UserCheckObject;

static PyTypeObject UserCheckType;

/* The id as the check reads it, an exact str or int (a new reference), or NULL. */
static PyObject *
read_id(int mode, PyObject *attribute, PyObject *get_id, PyObject *user_id, PyObject *user)
{
    PyObject *ident;
    if (mode == ID_GETATTR) {
        if (lookup_attr(user, attribute, &ident) < 0) {
            return NULL;
        }
        if (ident == NULL) {
            ident = Py_NewRef(user);
        }
    }
    else {
        if (PyUnicode_CheckExact(user) || PyLong_CheckExact(user)) {
            return Py_NewRef(user);
        }
        ident = mode == ID_ATTRIBUTE ? PyObject_GetAttr(user, attribute)
                                     : PyObject_CallOneArg(get_id, user);
        if (ident == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                return NULL;
            }
            PyErr_Clear();
            ident = Py_NewRef(Py_None);
        }
    }
    if (PyUnicode_CheckExact(ident) || PyLong_CheckExact(ident)) {
        return ident;
    }
    Py_DECREF(ident);
    return PyObject_CallOneArg(user_id, user);
}

/* The exception being raised, taken (none is set after): normalised, with its traceback. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

/* callable(*args) run as the body of an ``except`` block that caught the exception being raised
 * (taken: none is set after), as the Python check runs it: that exception is the one
 * sys.exc_info() and logging's exception() read, and the __context__ of any raised meanwhile.
 *
 * It is pushed as a level of its own on the thread's stack of handled exceptions, as a
 * generator's frame pushes one, and popped after, so the level below is left exactly as it was.
 * PyErr_SetHandledException writes that level instead, and what PyErr_GetHandledException says
 * to restore it with is read through to the levels below it: inside a generator handling
 * nothing, called while its caller handled an exception, the generator was left holding the
 * caller's exception, which sys.exc_info() then showed there after the caller's except block
 * had ended. */
static PyObject *
call_handling(PyObject *callable, PyObject *const *args, size_t nargs)
{
    PyThreadState *thread = PyThreadState_Get();
    _PyErr_StackItem handling = {
        .exc_value = take_exception(),
        .previous_item = thread->exc_info,
    };
    thread->exc_info = &handling;
    PyObject *result = PyObject_Vectorcall(callable, args, nargs, NULL);
    thread->exc_info = handling.previous_item;
    Py_XDECREF(handling.exc_value);
    return result;
}

/* ``predicate`` raised (the exception is set): an Exception is handed to on_group_error as the
 * exception being handled, as the Python check's ``except Exception:`` block does (the first
 * failure is logged with its traceback); anything else propagates. Returns 0, or -1 with an
 * exception set. */
static int
group_failed(PyObject *check, PyObject *on_group_error, PyObject *predicate, PyObject *user)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *args[] = {check, predicate, user};
    PyObject *result = call_handling(on_group_error, args, 3);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

/* Whether the id is below the flag's bound in the flag's bucketing: 1, 0, or -1 on error. */
static int
inside_percentage(UserCheckObject *self, PyObject *ident, PyObject *uid)
{
    uint64_t bucket;
    if (self->bucket_kind == BUCKET_CRC32) {
        if (default_bucket(ident, &bucket) < 0) {
            return -1;
        }
        return bucket < self->bound;
    }
    PyObject *value;
    if (self->bucket_kind == BUCKET_RANDOMIZED) {
        PyObject *args[] = {uid, self->seed};
        value = PyObject_Vectorcall(randomized, args, 2, NULL);
    }
    else {
        PyObject *args[] = {uid, self->name, Py_True};
        value = PyObject_Vectorcall(ruby, args, 2, randomize_kw);
    }
    if (value == NULL) {
        return -1;
    }
    bucket = PyLong_AsUnsignedLongLong(value);
    Py_DECREF(value);
    if (bucket == (uint64_t)-1 && PyErr_Occurred()) {
        return -1;
    }
    return bucket < self->bound;
}

/* A predicate may check flags again, its own too. The Python check runs in two frames (active's
 * and the flag's user_check), each charged to the recursion limit: C charges the same two before
 * it calls a flag's predicates, so a predicate that checks its own flag gets RecursionError at
 * the depth it gets it in Python (C charged nothing, and nested three times as deep), and C
 * nests no deeper than the Python check, though each level takes C stack that its frames do not
 * (a thread of 512 KB overflowed at the default limit). Up to 3.11 Py_EnterRecursiveCall
 * charges the one limit; from 3.12 it charges a count of C calls of its own, and the Python
 * frames' count is the thread state's py_recursion_remaining. Returns 0, or -1 with
 * RecursionError set (nothing charged). */
static int
enter_frames(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyThreadState *thread = PyThreadState_Get();
    if (thread->py_recursion_remaining < 2) {
        PyErr_SetString(PyExc_RecursionError, "maximum recursion depth exceeded");
        return -1;
    }
    thread->py_recursion_remaining -= 2;
#else
    if (Py_EnterRecursiveCall("")) {
        return -1;
    }
    if (Py_EnterRecursiveCall("")) {
        Py_LeaveRecursiveCall();
        return -1;
    }
#endif
    return 0;
}

static void
leave_frames(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyThreadState_Get()->py_recursion_remaining += 2;
#else
    Py_LeaveRecursiveCall();
    Py_LeaveRecursiveCall();
#endif
}

/* The check of one user: 1, 0, or -1 with an exception set. Steps as in specialize._factory. */
static int
user_check(UserCheckObject *self, PyObject *user)
{
    int answer = 0;
    PyObject *uid = NULL;
    PyObject *ident =
        read_id(self->id_mode, self->attribute, self->get_id, self->user_id, user);
    if (ident == NULL) {
        return -1;
    }
    if (self->excluded || self->users || self->bucket_kind >= BUCKET_RANDOMIZED) {
        uid = PyUnicode_CheckExact(ident) ? Py_NewRef(ident) : PyObject_Str(ident);
        if (uid == NULL) {
            goto failed;
        }
    }
    if (self->excluded) {
        int found = PySequence_Contains(self->excluded, uid);
        if (found != 0) {
            answer = found < 0 ? -1 : 0;
            goto done;
        }
    }
    if (self->time) {
        PyObject *drawn = PyObject_CallNoArgs(draw);
        if (drawn == NULL) {
            goto failed;
        }
        double value = PyFloat_AsDouble(drawn);
        Py_DECREF(drawn);
        if (value == -1.0 && PyErr_Occurred()) {
            goto failed;
        }
        if (value * 100.0 < self->time_percentage) {
            answer = 1;
            goto done;
        }
    }
    if (self->everyone) {
        answer = 1;
        goto done;
    }
    if (self->users) {
        int found = PySequence_Contains(self->users, uid);
        if (found != 0) {
            answer = found;
            goto done;
        }
    }
    if (self->bucket_kind != BUCKET_NONE) {
        int inside = inside_percentage(self, ident, uid);
        if (inside != 0) {
            answer = inside;
            goto done;
        }
    }
    Py_ssize_t count = PyTuple_GET_SIZE(self->predicates);
    if (count == 0) {
        goto done;
    }
    if (enter_frames() < 0) {
        goto failed;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *predicate = PyTuple_GET_ITEM(self->predicates, i);
        PyObject *said = PyObject_CallOneArg(predicate, user);
        int yes = -1;
        if (said != NULL) {
            yes = PyObject_IsTrue(said);
            Py_DECREF(said);
        }
        if (yes > 0) {
            answer = 1;
            break;
        }
        if (yes < 0 && group_failed(self->check, self->on_group_error, predicate, user) < 0) {
            answer = -1;
            break;
        }
    }
    leave_frames();
    goto done;
failed:
    answer = -1;
done:
    Py_DECREF(ident);
    Py_XDECREF(uid);
    return answer;
}

static PyObject *
answer_of(int answer)
{
    if (answer < 0) {
        return NULL;
    }
    return Py_NewRef(answer ? Py_True : Py_False);
}

static PyObject *
user_check_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError,
                     "user_check() takes exactly one positional argument (the user)");
        return NULL;
    }
    return answer_of(user_check((UserCheckObject *)self, args[0]));
}

static int
parse_bound(PyObject *bound, uint64_t *out)
{
    *out = PyLong_AsUnsignedLongLong(bound);
    if (*out == (uint64_t)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "bound must be an int from 0 to 2**64-1, got %R", bound);
        return -1;
    }
    return 0;
}

static int
parse_id_mode(int mode, PyObject *attribute, PyObject *get_id)
{
    if (mode < ID_GETATTR || mode > ID_GET_ID) {
        PyErr_Format(PyExc_ValueError, "id_mode must be 0, 1 or 2, got %d", mode);
        return -1;
    }
    if (mode != ID_GET_ID && !PyUnicode_Check(attribute)) {
        PyErr_Format(PyExc_TypeError, "attribute must be a str, got %R", attribute);
        return -1;
    }
    if (mode == ID_GET_ID && !PyCallable_Check(get_id)) {
        PyErr_Format(PyExc_TypeError, "get_id must be callable, got %R", get_id);
        return -1;
    }
    return 0;
}

static PyObject *
user_check_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "check", "excluded", "users", "time_percentage", "everyone", "bucket", "bound",
        "seed", "name", "predicates", "id_mode", "attribute", "get_id", "user_id",
        "on_group_error", NULL,
    };
    PyObject *check, *excluded, *users, *bound, *seed, *name, *predicates, *attribute, *get_id;
    PyObject *user_id, *on_group_error;
    double time_percentage;
    int everyone, bucket_kind, id_mode;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$OOOdpiOOOO!iOOOO:UserCheck", keywords, &check, &excluded, &users,
            &time_percentage, &everyone, &bucket_kind, &bound, &seed, &name, &PyTuple_Type,
            &predicates, &id_mode, &attribute, &get_id, &user_id, &on_group_error)) {
        return NULL;
    }
    if (bucket_kind < BUCKET_NONE || bucket_kind > BUCKET_RUBY) {
        PyErr_Format(PyExc_ValueError, "bucket must be 0, 1, 2 or 3, got %d", bucket_kind);
        return NULL;
    }
    if (parse_id_mode(id_mode, attribute, get_id) < 0) {
        return NULL;
    }
    UserCheckObject *self = (UserCheckObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = user_check_vectorcall;
    if (parse_bound(bound, &self->bound) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    int has_excluded = PyObject_IsTrue(excluded), has_users = PyObject_IsTrue(users);
    if (has_excluded < 0 || has_users < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->id_mode = id_mode;
    self->attribute = Py_NewRef(attribute);
    self->get_id = Py_NewRef(get_id);
    self->user_id = Py_NewRef(user_id);
    self->excluded = has_excluded ? Py_NewRef(excluded) : NULL;
    self->users = has_users ? Py_NewRef(users) : NULL;
    self->time = time_percentage > 0;
    self->time_percentage = time_percentage;
    self->everyone = everyone;
    self->bucket_kind = everyone ? BUCKET_NONE : bucket_kind;
    self->seed = Py_NewRef(seed);
    self->name = Py_NewRef(name);
    self->predicates = Py_NewRef(predicates);
    self->check = Py_NewRef(check);
    self->on_group_error = Py_NewRef(on_group_error);
    return (PyObject *)self;
}

static int
user_check_traverse(UserCheckObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->attribute);
    Py_VISIT(self->get_id);
    Py_VISIT(self->user_id);
    Py_VISIT(self->excluded);
    Py_VISIT(self->users);
    Py_VISIT(self->seed);
    Py_VISIT(self->name);
    Py_VISIT(self->predicates);
    Py_VISIT(self->check);
    Py_VISIT(self->on_group_error);
    return 0;
}

static int
user_check_clear(UserCheckObject *self)
{
    Py_CLEAR(self->attribute);
    Py_CLEAR(self->get_id);
    Py_CLEAR(self->user_id);
    Py_CLEAR(self->excluded);
    Py_CLEAR(self->users);
    Py_CLEAR(self->seed);
    Py_CLEAR(self->name);
    Py_CLEAR(self->predicates);
    Py_CLEAR(self->check);
    Py_CLEAR(self->on_group_error);
    return 0;
}

static void
user_check_dealloc(UserCheckObject *self)
{
    PyObject_GC_UnTrack(self);
    user_check_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject UserCheckType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rollout._core._speedups.UserCheck",
    .tp_doc = PyDoc_STR("One flag's check for a user (rollout._core.specialize), in C."),
    .tp_basicsize = sizeof(UserCheckObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = user_check_new,
    .tp_traverse = (traverseproc)user_check_traverse,
    .tp_clear = (inquiry)user_check_clear,
    .tp_dealloc = (destructor)user_check_dealloc,
    .tp_vectorcall_offset = offsetof(UserCheckObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* ---------------------------------------------------------------------------------------- */
/* Active                                                                                    */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *checks;       /* name -> Check */
    PyObject *anonymous;    /* name -> the answer without a user, where one is fixed */
    PyObject *user_checks;  /* name -> the flag's check for a user */
    PyObject *bounds;       /* name -> bound, for flags that are only a percentage of users */
    PyObject *uncompiled;   /* uncompiled(name, user): every name the dicts do not answer */
    PyObject *user_id;
    PyObject *attribute;    /* read with getattr(user, attribute, user) for a bound's flag */
} ActiveObject;

/* uncompiled(name, user); for an unhashable name, with the lookup's TypeError (still set) as the
 * exception being handled, as the Python check calls it from its ``except TypeError:`` block:
 * the error that refuses the name says it was raised during the handling of that one. */
static PyObject *
call_uncompiled(ActiveObject *self, PyObject *name, PyObject *user, int unhashable)
{
    PyObject *args[] = {name, user};
    if (unhashable) {
        return call_handling(self->uncompiled, args, 2);
    }
    return PyObject_Vectorcall(self->uncompiled, args, 2, NULL);
}

/* A dict lookup where a TypeError (an unhashable name) means "not compiled": 1 found (a new
 * reference in *found), 0 not found, or 0 with *unhashable set and the TypeError left set for
 * call_uncompiled; -1 another error. */
static int
lookup_name(PyObject *dict, PyObject *name, PyObject **found, int *unhashable)
{
    *found = PyDict_GetItemWithError(dict, name);
    if (*found != NULL) {
        Py_INCREF(*found);
        return 1;
    }
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
            return -1;
        }
        *unhashable = 1;
    }
    return 0;
}

static PyObject *
active_without_user(ActiveObject *self, PyObject *name)
{
    PyObject *found;
    int unhashable = 0;
    int status = lookup_name(self->anonymous, name, &found, &unhashable);
    if (status < 0) {
        return NULL;
    }
    if (status > 0) {
        if (found != Py_None) {
            return found;
        }
        Py_DECREF(found);
    }
    if (!unhashable) {
        status = lookup_name(self->checks, name, &found, &unhashable);
        if (status < 0) {
            return NULL;
        }
    }
    if (unhashable || status == 0 || found == Py_None) {
        if (status > 0) {
            Py_DECREF(found);
        }
        return call_uncompiled(self, name, Py_None, unhashable);
    }
    /* Only a percentage of time leaves the answer without a user to chance. */
    PyObject *percentage = PyObject_GetAttrString(found, "time_percentage");
    Py_DECREF(found);
    if (percentage == NULL) {
        return NULL;
    }
    PyObject *drawn = PyObject_CallNoArgs(draw);
    if (drawn == NULL) {
        Py_DECREF(percentage);
        return NULL;
    }
    PyObject *hundred = PyFloat_FromDouble(PyFloat_AsDouble(drawn) * 100.0);
    Py_DECREF(drawn);
    if (hundred == NULL || PyErr_Occurred()) {
        Py_XDECREF(hundred);
        Py_DECREF(percentage);
        return NULL;
    }
    PyObject *answer = PyObject_RichCompare(hundred, percentage, Py_LT);
    Py_DECREF(hundred);
    Py_DECREF(percentage);
    return answer;
}

static PyObject *
active_with_user(ActiveObject *self, PyObject *name, PyObject *user)
{
    PyObject *check;
    int unhashable = 0;
    int status = lookup_name(self->user_checks, name, &check, &unhashable);
    if (status < 0) {
        return NULL;
    }
    if (unhashable) {
        return call_uncompiled(self, name, user, 1);
    }
    if (status > 0 && check != Py_None) {
        PyObject *answer = Py_TYPE(check) == &UserCheckType
                               ? answer_of(user_check((UserCheckObject *)check, user))
                               : PyObject_CallOneArg(check, user);
        Py_DECREF(check);
        return answer;
    }
    if (status > 0) {
        Py_DECREF(check);
    }
    /* Looked up only when the name is not in user_checks, so other flags pay nothing. */
    PyObject *bound_object = PyDict_GetItemWithError(self->bounds, name);
    if (bound_object == NULL || bound_object == Py_None) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return call_uncompiled(self, name, user, 0);
    }
    /* Read before the id: reading it can run code that replaces this entry. */
    uint64_t bound = PyLong_AsUnsignedLongLong(bound_object);
    if (bound == (uint64_t)-1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *ident = read_id(ID_GETATTR, self->attribute, NULL, self->user_id, user);
    if (ident == NULL) {
        return NULL;
    }
    uint64_t bucket;
    status = default_bucket(ident, &bucket);
    Py_DECREF(ident);
    if (status < 0) {
        return NULL;
    }
    return Py_NewRef(bucket < bound ? Py_True : Py_False);
}

static PyObject *
active_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    /* active(owner, name, user=None); owner is the Rollout (unused). A wrong call is refused
     * as CPython refuses one of the Python function: the keywords first, then the count of
     * positional arguments, then the missing ones, all named. */
    static const char *const names[] = {"owner", "name", "user"};
    PyObject *given[3] = {NULL, NULL, Py_None};
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    for (Py_ssize_t i = 0; i < nargs && i < 3; i++) {
        given[i] = args[i];
    }
    if (kwnames != NULL) {
        Py_ssize_t count = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < count; k++) {
            PyObject *keyword = PyTuple_GET_ITEM(kwnames, k);
            int slot = -1;
            for (int i = 0; i < 3; i++) {
                if (PyUnicode_CompareWithASCIIString(keyword, names[i]) == 0) {
                    slot = i;
                }
            }
            if (slot < 0) {
                PyErr_Format(PyExc_TypeError,
                             "active() got an unexpected keyword argument '%U'", keyword);
                return NULL;
            }
            if (slot < nargs) {
                PyErr_Format(PyExc_TypeError, "active() got multiple values for argument '%s'",
                             names[slot]);
                return NULL;
            }
            given[slot] = args[nargs + k];
        }
    }
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError,
                     "active() takes from 2 to 3 positional arguments but %zd were given",
                     nargs);
        return NULL;
    }
    if (given[0] == NULL && given[1] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "active() missing 2 required positional arguments: 'owner' and 'name'");
        return NULL;
    }
    if (given[0] == NULL || given[1] == NULL) {
        PyErr_Format(PyExc_TypeError, "active() missing 1 required positional argument: '%s'",
                     given[0] == NULL ? "owner" : "name");
        return NULL;
    }
    ActiveObject *active = (ActiveObject *)self;
    if (given[2] == Py_None) {
        return active_without_user(active, given[1]);
    }
    return active_with_user(active, given[1], given[2]);
}

static PyObject *
active_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "checks", "anonymous", "user_checks", "uncompiled", "percentage_bounds",
        "id_attribute", "user_id", NULL,
    };
    PyObject *checks, *anonymous, *user_checks, *uncompiled, *bounds, *attribute, *user_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!OO!UO:Active", keywords,
                                     &PyDict_Type, &checks, &PyDict_Type, &anonymous,
                                     &PyDict_Type, &user_checks, &uncompiled, &PyDict_Type,
                                     &bounds, &attribute, &user_id)) {
        return NULL;
    }
    ActiveObject *self = (ActiveObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = active_vectorcall;
    self->checks = Py_NewRef(checks);
    self->anonymous = Py_NewRef(anonymous);
    self->user_checks = Py_NewRef(user_checks);
    self->uncompiled = Py_NewRef(uncompiled);
    self->bounds = Py_NewRef(bounds);
    self->attribute = Py_NewRef(attribute);
    PyUnicode_InternInPlace(&self->attribute);
    self->user_id = Py_NewRef(user_id);
    return (PyObject *)self;
}

static int
active_traverse(ActiveObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->checks);
    Py_VISIT(self->anonymous);
    Py_VISIT(self->user_checks);
    Py_VISIT(self->uncompiled);
    Py_VISIT(self->bounds);
    Py_VISIT(self->attribute);
    Py_VISIT(self->user_id);
    return 0;
}

static int
active_clear(ActiveObject *self)
{
    Py_CLEAR(self->checks);
    Py_CLEAR(self->anonymous);
    Py_CLEAR(self->user_checks);
    Py_CLEAR(self->uncompiled);
    Py_CLEAR(self->bounds);
    Py_CLEAR(self->attribute);
    Py_CLEAR(self->user_id);
    return 0;
}

static void
active_dealloc(ActiveObject *self)
{
    PyObject_GC_UnTrack(self);
    active_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Read from an instance (``flags.active`` without a call): a bound method, as for a function. */
static PyObject *
active_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    if (instance == NULL || instance == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, instance);
}

/* What inspect and repr read of a function: help(flags.active) and inspect.signature() show
 * the same as for the Python check. */
static PyObject *
active_text_signature(PyObject *self, void *closure)
{
    return PyUnicode_FromString("(owner, name, user=None)");
}

static PyObject *
active_name(PyObject *self, void *closure)
{
    return PyUnicode_FromString("active");
}

static PyGetSetDef active_getset[] = {
    {"__text_signature__", active_text_signature, NULL, NULL, NULL},
    {"__name__", active_name, NULL, NULL, NULL},
    {"__qualname__", active_name, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ActiveType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rollout._core._speedups.Active",
    .tp_doc = PyDoc_STR("flags.active (rollout._core.evaluate), in C."),
    .tp_basicsize = sizeof(ActiveObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = active_new,
    .tp_traverse = (traverseproc)active_traverse,
    .tp_clear = (inquiry)active_clear,
    .tp_dealloc = (destructor)active_dealloc,
    .tp_vectorcall_offset = offsetof(ActiveObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = active_get,
    .tp_getset = active_getset,
};


/* ---------------------------------------------------------------------------------------- */
/* Slots read and written in place                                                          */

/* Where a class keeps one of its __slots__ (a member descriptor), learnt on first use and kept
 * while the class is unchanged (its version tag): a read or a write of that slot is then one
 * load or store, not an attribute lookup. Any other attribute (a property, a dict entry, a
 * slot not set yet) goes through PyObject_GetAttr / PyObject_SetAttr, as Python code would. */
typedef struct {
    PyTypeObject *type;  /* borrowed: compared only, with the version tag */
    unsigned int version;
    Py_ssize_t offset;   /* 0: not a slot of this class */
} SlotPlace;

static Py_ssize_t
slot_offset(PyObject *object, PyObject *name, SlotPlace *place, int writing)
{
    PyTypeObject *type = Py_TYPE(object);
    if (type == place->type && type->tp_version_tag == place->version) {
        return place->offset;
    }
    place->type = NULL;
    place->offset = 0;
    PyObject *descriptor = _PyType_Lookup(type, name);
    if (!PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG)) {
        return 0;
    }
    /* A class with its own __getattribute__ or __setattr__ (a subclass's) is asked, always. */
    int generic = writing ? type->tp_setattro == PyObject_GenericSetAttr
                          : type->tp_getattro == PyObject_GenericGetAttr;
    if (generic && descriptor != NULL && Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type == T_OBJECT_EX && !(writing && (member->flags & READONLY)) &&
            PyType_IsSubtype(type, PyDescr_TYPE(descriptor))) {
            place->offset = member->offset;
        }
    }
    place->type = type;
    place->version = type->tp_version_tag;
    return place->offset;
}

/* getattr(object, name): a new reference, or NULL with an exception set. */
static PyObject *
slot_read(PyObject *object, PyObject *name, SlotPlace *place)
{
    Py_ssize_t offset = slot_offset(object, name, place, 0);
    if (offset > 0) {
        PyObject *value = *(PyObject **)((char *)object + offset);
        if (value != NULL) {
            return Py_NewRef(value);
        }
    }
    return PyObject_GetAttr(object, name);
}

/* setattr(object, name, value): 0, or -1 with an exception set. */
static int
slot_write(PyObject *object, PyObject *name, PyObject *value, SlotPlace *place)
{
    Py_ssize_t offset = slot_offset(object, name, place, 1);
    if (offset > 0) {
        PyObject **slot = (PyObject **)((char *)object + offset);
        PyObject *old = *slot;
        *slot = Py_NewRef(value);
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(object, name, value);
}

/* ---------------------------------------------------------------------------------------- */
/* Resolution                                                                                */

/* A rule that decided, in the order of rollout._core.decide's steps. */
enum rule {
    RULE_EXCLUDED, RULE_TIME, RULE_EVERYBODY, RULE_LISTED, RULE_BUCKET, RULE_GROUP, RULE_OFF,
    RULE_COUNT,
};

static const char *const rule_names[RULE_COUNT] = {
    "excluded", "percentage_of_time", "everybody", "listed", "bucket", "group", "off",
};

static PyObject *rule_strings[RULE_COUNT];  /* the names as str, interned */
static PyObject *empty_tuple;
static PyObject *str_value, *str_reason, *str_variant, *str_view, *str_decision, *str_bucket;
static PyObject *str_id, *str_targeting_key, *str_context, *str_dict;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *excluded;   /* NULL when there are none */
    PyObject *users;      /* NULL when there are none */
    int time;
    double time_percentage;
    int everyone;
    int bucket_kind;
    uint64_t bound;
    PyObject *seed;
    PyObject *name;
    PyObject *predicates;  /* a tuple */
    PyObject *groups;      /* a tuple, one group per predicate */
    PyObject *check;
    PyObject *on_group_error;
    /* The decision tuple's fields that are the flag's. */
    PyObject *percentage, *of_time, *bound_object, *kind;
    /* The result: a new ``result`` (object.__new__) with these set. */
    PyTypeObject *result;
    PyObject *view, *on_variant, *off_variant;
    PyObject *reasons[RULE_COUNT];    /* reasons[rule], for the rules of the flag's shape */
    PyObject *templates[2][RULE_COUNT];  /* [answer][rule]: its decision, its bucket None */
    PyObject *group_templates;        /* a tuple: the decision of each group */
} ResolutionObject;

static PyTypeObject ResolutionType;

/* A decision tuple (rollout._core.decide._decision): bucket NULL where no bucket step was
 * taken, drawn NULL where no draw is reported. */
static PyObject *
decision_tuple(ResolutionObject *self, int active, int rule, PyObject *group, int with_bucket,
               PyObject *bucket, PyObject *drawn)
{
    PyObject *none = Py_None;
    return PyTuple_Pack(9, active ? Py_True : Py_False, rule_strings[rule], self->percentage,
                        self->of_time, group ? group : none,
                        with_bucket && bucket ? bucket : none,
                        with_bucket ? self->bound_object : none,
                        with_bucket ? self->kind : none, drawn ? drawn : none);
}

/* The end of a resolution: the result object (decide._resolution_ending's lines). ``group``:
 * the index of the deciding group, or -1; ``bucket``: the bucket read (NULL: no bucket step);
 * ``drawn``: the draw, reported (NULL: none). */
static PyObject *
resolved(ResolutionObject *self, int active, int rule, Py_ssize_t group, PyObject *bucket,
         PyObject *drawn)
{
    PyObject *made = PyBaseObject_Type.tp_new(self->result, empty_tuple, NULL);
    if (made == NULL) {
        return NULL;
    }
    PyObject *decision;
    if (drawn != NULL) {  /* this decision's own */
        PyObject *group_object = group >= 0 ? PyTuple_GET_ITEM(self->groups, group) : NULL;
        decision = decision_tuple(self, active, rule, group_object, bucket != NULL, bucket,
                                  drawn);
        if (decision == NULL) {
            Py_DECREF(made);
            return NULL;
        }
    }
    else {
        decision = Py_NewRef(group >= 0 ? PyTuple_GET_ITEM(self->group_templates, group)
                                        : self->templates[active][rule]);
    }
    static SlotPlace value_place, reason_place, variant_place, view_place, decision_place,
        bucket_place;
    PyObject *variant = active ? self->on_variant : self->off_variant;
    int failed =
        slot_write(made, str_value, active ? Py_True : Py_False, &value_place) < 0 ||
        slot_write(made, str_reason, self->reasons[rule], &reason_place) < 0 ||
        slot_write(made, str_variant, variant, &variant_place) < 0 ||
        slot_write(made, str_view, self->view, &view_place) < 0 ||
        slot_write(made, str_decision, decision, &decision_place) < 0 ||
        (drawn == NULL && bucket != NULL &&
         slot_write(made, str_bucket, bucket, &bucket_place) < 0);
    Py_DECREF(decision);
    if (failed) {
        Py_DECREF(made);
        return NULL;
    }
    return made;
}

/* What the provider gives to build the ContextUser of a context only when a predicate is to be
 * called (building it calls no Python code, so whether it was built is not observable). */
typedef struct {
    PyTypeObject *type;    /* ContextUser */
    PyObject *key;         /* its id and targeting key */
    PyObject *context;
    PyObject *attributes;  /* an exact dict: its copy is the user's __dict__ */
} LazyUser;

/* ContextUser(context) for a context whose targeting key is known (openfeature._context's
 * fill_context_user), or NULL. */
static PyObject *
context_user(LazyUser *lazy)
{
    PyObject *made = PyBaseObject_Type.tp_new(lazy->type, empty_tuple, NULL);
    if (made == NULL) {
        return NULL;
    }
    static SlotPlace id_place, key_place, context_place;
    PyObject *copy = PyDict_Copy(lazy->attributes);
    if (copy == NULL || slot_write(made, str_id, lazy->key, &id_place) < 0 ||
        slot_write(made, str_targeting_key, lazy->key, &key_place) < 0 ||
        slot_write(made, str_context, lazy->context, &context_place) < 0 ||
        PyObject_GenericSetDict(made, copy, NULL) < 0) {
        Py_XDECREF(copy);
        Py_DECREF(made);
        return NULL;
    }
    Py_DECREF(copy);
    return made;
}

/* The resolution of uid (an exact str) for ``user`` (borrowed; NULL: built from ``lazy`` if a
 * predicate is called). Steps as in rollout._core.decide._source. */
static PyObject *
resolve(ResolutionObject *self, PyObject *uid, PyObject *user, LazyUser *lazy)
{
    PyObject *drawn = NULL, *bucket = NULL, *made = NULL, *built = NULL;
    if (self->excluded) {
        int found = PySequence_Contains(self->excluded, uid);
        if (found != 0) {
            return found < 0 ? NULL : resolved(self, 0, RULE_EXCLUDED, -1, NULL, NULL);
        }
    }
    if (self->time) {
        PyObject *value = PyObject_CallNoArgs(draw);
        if (value == NULL) {
            return NULL;
        }
        double hundred = PyFloat_AsDouble(value);
        Py_DECREF(value);
        if (hundred == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        drawn = PyFloat_FromDouble(hundred * 100.0);
        if (drawn == NULL) {
            return NULL;
        }
        if (hundred * 100.0 < self->time_percentage) {
            made = resolved(self, 1, RULE_TIME, -1, NULL, drawn);
            goto done;
        }
    }
    if (self->everyone) {
        made = resolved(self, 1, RULE_EVERYBODY, -1, NULL, drawn);
        goto done;
    }
    if (self->users) {
        int found = PySequence_Contains(self->users, uid);
        if (found != 0) {
            made = found < 0 ? NULL : resolved(self, 1, RULE_LISTED, -1, NULL, drawn);
            goto done;
        }
    }
    if (self->bucket_kind == BUCKET_CRC32) {
        uint64_t value;
        if (default_bucket(uid, &value) < 0 || (bucket = PyLong_FromUnsignedLongLong(value)) == NULL) {
            goto done;
        }
    }
    else if (self->bucket_kind == BUCKET_RANDOMIZED) {
        PyObject *args[] = {uid, self->seed};
        if ((bucket = PyObject_Vectorcall(randomized, args, 2, NULL)) == NULL) {
            goto done;
        }
    }
    else if (self->bucket_kind == BUCKET_RUBY) {
        PyObject *args[] = {uid, self->name, Py_True};
        if ((bucket = PyObject_Vectorcall(ruby, args, 2, randomize_kw)) == NULL) {
            goto done;
        }
    }
    if (bucket != NULL) {
        int below = PyObject_RichCompareBool(bucket, self->bound_object, Py_LT);
        if (below != 0) {
            made = below < 0 ? NULL : resolved(self, 1, RULE_BUCKET, -1, bucket, drawn);
            goto done;
        }
    }
    Py_ssize_t count = PyTuple_GET_SIZE(self->predicates);
    if (count > 0 && user == NULL) {
        if ((built = context_user(lazy)) == NULL) {
            goto done;
        }
        user = built;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *predicate = PyTuple_GET_ITEM(self->predicates, i);
        PyObject *said = PyObject_CallOneArg(predicate, user);
        int yes = -1;
        if (said != NULL) {
            yes = PyObject_IsTrue(said);
            Py_DECREF(said);
        }
        if (yes > 0) {
            made = resolved(self, 1, RULE_GROUP, i, NULL, drawn);
            goto done;
        }
        if (yes < 0 && group_failed(self->check, self->on_group_error, predicate, user) < 0) {
            goto done;
        }
    }
    made = resolved(self, 0, bucket ? RULE_BUCKET : self->time ? RULE_TIME : RULE_OFF, -1,
                    bucket, drawn);
done:
    Py_XDECREF(drawn);
    Py_XDECREF(bucket);
    Py_XDECREF(built);
    return made;
}

static PyObject *
resolution_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError,
                        "resolve() takes exactly two positional arguments (uid, user)");
        return NULL;
    }
    if (!PyUnicode_CheckExact(args[0])) {
        PyErr_Format(PyExc_TypeError, "uid must be a str, got %R", args[0]);
        return NULL;
    }
    return resolve((ResolutionObject *)self, args[0], args[1], NULL);
}

/* The reason of ``rule`` and its decision template, for a rule of the flag's shape. */
static int
add_rule(ResolutionObject *self, PyObject *reasons, int active, int rule, int with_bucket)
{
    if (self->reasons[rule] == NULL &&
        (self->reasons[rule] = PyObject_GetItem(reasons, rule_strings[rule])) == NULL) {
        return -1;
    }
    self->templates[active][rule] =
        decision_tuple(self, active, rule, NULL, with_bucket, NULL, NULL);
    return self->templates[active][rule] == NULL ? -1 : 0;
}

static PyObject *
resolution_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "check", "excluded", "users", "percentage", "time_percentage", "everyone", "bucket",
        "bound", "kind", "seed", "name", "predicates", "groups", "on_group_error", "result",
        "view", "reasons", "on_variant", "off_variant", NULL,
    };
    PyObject *check, *excluded, *users, *percentage, *of_time, *bound, *kind, *seed, *name;
    PyObject *predicates, *groups, *on_group_error, *result, *view, *reasons, *on_variant;
    PyObject *off_variant;
    int everyone, bucket_kind;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$OOOOOpiOOOOO!O!OO!OOOO:Resolution", keywords, &check, &excluded,
            &users, &percentage, &of_time, &everyone, &bucket_kind, &bound, &kind, &seed, &name,
            &PyTuple_Type, &predicates, &PyTuple_Type, &groups, &on_group_error, &PyType_Type,
            &result, &view, &reasons, &on_variant, &off_variant)) {
        return NULL;
    }
    if (bucket_kind < BUCKET_NONE || bucket_kind > BUCKET_RUBY) {
        PyErr_Format(PyExc_ValueError, "bucket must be 0, 1, 2 or 3, got %d", bucket_kind);
        return NULL;
    }
    if (PyTuple_GET_SIZE(groups) != PyTuple_GET_SIZE(predicates)) {
        PyErr_SetString(PyExc_ValueError, "groups and predicates must be of one length");
        return NULL;
    }
    double time_percentage = PyFloat_AsDouble(of_time);
    if (time_percentage == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    ResolutionObject *self = (ResolutionObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = resolution_vectorcall;
    int has_excluded = PyObject_IsTrue(excluded), has_users = PyObject_IsTrue(users);
    if (has_excluded < 0 || has_users < 0 || parse_bound(bound, &self->bound) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    self->excluded = has_excluded ? Py_NewRef(excluded) : NULL;
    self->users = has_users ? Py_NewRef(users) : NULL;
    self->time = time_percentage > 0;
    self->time_percentage = time_percentage;
    self->everyone = everyone;
    self->bucket_kind = everyone ? BUCKET_NONE : bucket_kind;
    self->seed = Py_NewRef(seed);
    self->name = Py_NewRef(name);
    self->predicates = Py_NewRef(predicates);
    self->groups = Py_NewRef(groups);
    self->check = Py_NewRef(check);
    self->on_group_error = Py_NewRef(on_group_error);
    self->percentage = Py_NewRef(percentage);
    self->of_time = Py_NewRef(of_time);
    self->bound_object = Py_NewRef(bound);
    self->kind = Py_NewRef(kind);
    self->result = (PyTypeObject *)Py_NewRef(result);
    self->view = Py_NewRef(view);
    self->on_variant = Py_NewRef(on_variant);
    self->off_variant = Py_NewRef(off_variant);
    /* The rules of the shape, in the order decide._source reads reasons[...]. */
    int with_bucket = self->bucket_kind != BUCKET_NONE;
    Py_ssize_t count = everyone ? 0 : PyTuple_GET_SIZE(predicates);
    int last = everyone ? -1 : with_bucket ? RULE_BUCKET : self->time ? RULE_TIME : RULE_OFF;
    if ((has_excluded && add_rule(self, reasons, 0, RULE_EXCLUDED, 0) < 0) ||
        (self->time && add_rule(self, reasons, 1, RULE_TIME, 0) < 0) ||
        (everyone && add_rule(self, reasons, 1, RULE_EVERYBODY, 0) < 0) ||
        (!everyone && has_users && add_rule(self, reasons, 1, RULE_LISTED, 0) < 0) ||
        (with_bucket && add_rule(self, reasons, 1, RULE_BUCKET, 1) < 0) ||
        (count > 0 && add_rule(self, reasons, 1, RULE_GROUP, 0) < 0) ||
        (last >= 0 && add_rule(self, reasons, 0, last, with_bucket) < 0)) {
        Py_DECREF(self);
        return NULL;
    }
    self->group_templates = PyTuple_New(count);
    if (self->group_templates == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *made = decision_tuple(self, 1, RULE_GROUP, PyTuple_GET_ITEM(groups, i), 0,
                                        NULL, NULL);
        if (made == NULL) {
            Py_DECREF(self);
            return NULL;
        }
        PyTuple_SET_ITEM(self->group_templates, i, made);
    }
    return (PyObject *)self;
}

static int
resolution_traverse(ResolutionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->excluded);
    Py_VISIT(self->users);
    Py_VISIT(self->seed);
    Py_VISIT(self->name);
    Py_VISIT(self->predicates);
    Py_VISIT(self->groups);
    Py_VISIT(self->check);
    Py_VISIT(self->on_group_error);
    Py_VISIT(self->percentage);
    Py_VISIT(self->of_time);
    Py_VISIT(self->bound_object);
    Py_VISIT(self->kind);
    Py_VISIT(self->result);
    Py_VISIT(self->view);
    Py_VISIT(self->on_variant);
    Py_VISIT(self->off_variant);
    for (int i = 0; i < RULE_COUNT; i++) {
        Py_VISIT(self->reasons[i]);
        Py_VISIT(self->templates[0][i]);
        Py_VISIT(self->templates[1][i]);
    }
    Py_VISIT(self->group_templates);
    return 0;
}

static int
resolution_clear(ResolutionObject *self)
{
    Py_CLEAR(self->excluded);
    Py_CLEAR(self->users);
    Py_CLEAR(self->seed);
    Py_CLEAR(self->name);
    Py_CLEAR(self->predicates);
    Py_CLEAR(self->groups);
    Py_CLEAR(self->check);
    Py_CLEAR(self->on_group_error);
    Py_CLEAR(self->percentage);
    Py_CLEAR(self->of_time);
    Py_CLEAR(self->bound_object);
    Py_CLEAR(self->kind);
    Py_CLEAR(self->result);
    Py_CLEAR(self->view);
    Py_CLEAR(self->on_variant);
    Py_CLEAR(self->off_variant);
    for (int i = 0; i < RULE_COUNT; i++) {
        Py_CLEAR(self->reasons[i]);
        Py_CLEAR(self->templates[0][i]);
        Py_CLEAR(self->templates[1][i]);
    }
    Py_CLEAR(self->group_templates);
    return 0;
}

static void
resolution_dealloc(ResolutionObject *self)
{
    PyObject_GC_UnTrack(self);
    resolution_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ResolutionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rollout._core._speedups.Resolution",
    .tp_doc = PyDoc_STR("One flag's resolution function (rollout._core.decide), in C."),
    .tp_basicsize = sizeof(ResolutionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = resolution_new,
    .tp_traverse = (traverseproc)resolution_traverse,
    .tp_clear = (inquiry)resolution_clear,
    .tp_dealloc = (destructor)resolution_dealloc,
    .tp_vectorcall_offset = offsetof(ResolutionObject, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* The names and constants a resolution uses. Returns 0, or -1 with an exception set. */
static int
resolution_init(void)
{
    for (int i = 0; i < RULE_COUNT; i++) {
        if ((rule_strings[i] = PyUnicode_InternFromString(rule_names[i])) == NULL) {
            return -1;
        }
    }
    empty_tuple = PyTuple_New(0);
    str_value = PyUnicode_InternFromString("value");
    str_reason = PyUnicode_InternFromString("reason");
    str_variant = PyUnicode_InternFromString("variant");
    str_view = PyUnicode_InternFromString("_view");
    str_decision = PyUnicode_InternFromString("_decision");
    str_bucket = PyUnicode_InternFromString("_bucket");
    str_id = PyUnicode_InternFromString("id");
    str_targeting_key = PyUnicode_InternFromString("targeting_key");
    str_context = PyUnicode_InternFromString("context");
    str_dict = PyUnicode_InternFromString("__dict__");
    if (empty_tuple == NULL || str_value == NULL || str_reason == NULL || str_variant == NULL ||
        str_view == NULL || str_decision == NULL || str_bucket == NULL || str_id == NULL ||
        str_targeting_key == NULL || str_context == NULL || str_dict == NULL) {
        return -1;
    }
    return PyType_Ready(&ResolutionType);
}

/* ---------------------------------------------------------------------------------------- */
/* ResolveBoolean                                                                            */

/* What RolloutProvider.resolve_boolean_details reads of its provider: one object, its
 * ``_fast`` (openfeature._provider), so the method reads one attribute of the instance. */
typedef struct {
    PyObject_HEAD
    PyObject *views;     /* the provider's _views, name -> FlagView (a dict) */
    PyObject *forced;    /* flags.overrides (a live mapping) */
    PyObject *checks;    /* the Rollout's compiled checks, name -> Check (a dict) */
    PyObject *slot;      /* the Rollout's check slot: wrapped, observed() */
    int context_users;   /* the default ContextUser, its id the targeting key */
    PyTypeObject *context_user;
    PyObject *error;     /* OpenFeatureError */
    PyObject *failure;   /* failure(default_value, error) */
} ProviderStateObject;

static PyTypeObject ProviderStateType;

static PyObject *str_fast, *str_targeted_boolean, *str_groups, *str_resolver, *str_settled;
static PyObject *str_check, *str_attributes, *str_wrapped, *str_observed;

static PyObject *
provider_state_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "views", "forced", "checks", "slot", "context_users", "context_user", "error",
        "failure", NULL,
    };
    PyObject *views, *forced, *checks, *slot, *context_user, *error, *failure;
    int context_users;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!OO!OpO!OO:ProviderState", keywords,
                                     &PyDict_Type, &views, &forced, &PyDict_Type, &checks,
                                     &slot, &context_users, &PyType_Type, &context_user, &error,
                                     &failure)) {
        return NULL;
    }
    ProviderStateObject *self = (ProviderStateObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->views = Py_NewRef(views);
    self->forced = Py_NewRef(forced);
    self->checks = Py_NewRef(checks);
    self->slot = Py_NewRef(slot);
    self->context_users = context_users;
    self->context_user = (PyTypeObject *)Py_NewRef(context_user);
    self->error = Py_NewRef(error);
    self->failure = Py_NewRef(failure);
    return (PyObject *)self;
}

static int
provider_state_traverse(ProviderStateObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->views);
    Py_VISIT(self->forced);
    Py_VISIT(self->checks);
    Py_VISIT(self->slot);
    Py_VISIT(self->context_user);
    Py_VISIT(self->error);
    Py_VISIT(self->failure);
    return 0;
}

static int
provider_state_clear(ProviderStateObject *self)
{
    Py_CLEAR(self->views);
    Py_CLEAR(self->forced);
    Py_CLEAR(self->checks);
    Py_CLEAR(self->slot);
    Py_CLEAR(self->context_user);
    Py_CLEAR(self->error);
    Py_CLEAR(self->failure);
    return 0;
}

static void
provider_state_dealloc(ProviderStateObject *self)
{
    PyObject_GC_UnTrack(self);
    provider_state_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ProviderStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rollout._core._speedups.ProviderState",
    .tp_doc = PyDoc_STR("What the OpenFeature provider's resolution in C reads."),
    .tp_basicsize = sizeof(ProviderStateObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = provider_state_new,
    .tp_traverse = (traverseproc)provider_state_traverse,
    .tp_clear = (inquiry)provider_state_clear,
    .tp_dealloc = (destructor)provider_state_dealloc,
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;  /* the Python method: every case but the two below */
} ResolveBooleanObject;

enum { FAST_NO = 0, FAST_DONE = 1, FAST_ERROR = -1 };

static SlotPlace groups_place, resolver_place, settled_place, check_place, targeted_place;
static SlotPlace wrapped_place, fast_place;

/* bool(getattr(object, name)): 1, 0, -1 on error. */
static int
attribute_true(PyObject *object, PyObject *name, SlotPlace *place)
{
    PyObject *value = slot_read(object, name, place);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* The targeted case: a boolean flag of targeting (its view's resolver a Resolution of the
 * flag's check now), a context with a str targeting key, nothing overridden, and either no
 * groups or the default ContextUser of an exact dict of attributes. FAST_NO leaves the call to
 * the Python method, which reads everything again (nothing read here runs Python code). */
static int
targeted(ProviderStateObject *state, PyObject *name, PyObject *view, PyObject *context,
         PyObject **out)
{
    int status = FAST_NO;
    PyObject *key = NULL, *attributes = NULL, *resolver = NULL;
    key = PyObject_GetAttr(context, str_targeting_key);
    if (key == NULL) {
        return FAST_ERROR;
    }
    if (!PyUnicode_CheckExact(key) || PyUnicode_GET_LENGTH(key) == 0) {
        goto done;
    }
    int forced = PyObject_IsTrue(state->forced);
    if (forced != 0) {
        status = forced < 0 ? FAST_ERROR : FAST_NO;
        goto done;
    }
    int groups = attribute_true(view, str_groups, &groups_place);
    if (groups < 0) {
        status = FAST_ERROR;
        goto done;
    }
    if (groups) {
        if (!state->context_users) {
            goto done;
        }
        attributes = PyObject_GetAttr(context, str_attributes);
        if (attributes == NULL) {
            status = FAST_ERROR;
            goto done;
        }
        if (!PyDict_CheckExact(attributes)) {
            goto done;
        }
    }
    resolver = slot_read(view, str_resolver, &resolver_place);
    if (resolver == NULL) {
        status = FAST_ERROR;
        goto done;
    }
    PyObject *check = PyDict_GetItemWithError(state->checks, name);
    if (check == NULL && PyErr_Occurred()) {
        status = FAST_ERROR;
        goto done;
    }
    if (!PyTuple_CheckExact(resolver) || PyTuple_GET_SIZE(resolver) != 2 || check == NULL ||
        PyTuple_GET_ITEM(resolver, 0) != check ||
        !Py_IS_TYPE(PyTuple_GET_ITEM(resolver, 1), &ResolutionType)) {
        goto done;
    }
    LazyUser lazy = {state->context_user, key, context, attributes};
    PyObject *made = resolve((ResolutionObject *)PyTuple_GET_ITEM(resolver, 1), key,
                             groups ? NULL : key, &lazy);
    if (made == NULL) {
        status = FAST_ERROR;
        goto done;
    }
    int wrapped = attribute_true(state->slot, str_wrapped, &wrapped_place);
    if (wrapped > 0) {  /* the metrics sampler counts it as a check */
        PyObject *value = PyObject_GetAttr(made, str_value);
        PyObject *said = value == NULL ? NULL
                                       : PyObject_CallMethodObjArgs(state->slot, str_observed,
                                                                    name, value, NULL);
        Py_XDECREF(value);
        if (said == NULL) {
            wrapped = -1;
        }
        Py_XDECREF(said);
    }
    if (wrapped < 0) {
        Py_DECREF(made);
        status = FAST_ERROR;
        goto done;
    }
    *out = made;
    status = FAST_DONE;
done:
    Py_XDECREF(key);
    Py_XDECREF(attributes);
    Py_XDECREF(resolver);
    return status;
}

/* The settled case: the flag answers the same for every context (its view's shared
 * resolution), no context, nothing overridden, the view of the flag's check now, no sampler. */
static int
settled(ProviderStateObject *state, PyObject *name, PyObject *view, PyObject **out)
{
    PyObject *shared = slot_read(view, str_settled, &settled_place);
    if (shared == NULL) {
        return FAST_ERROR;
    }
    int status = FAST_NO;
    if (shared == Py_None) {
        goto done;
    }
    int forced = PyObject_IsTrue(state->forced);
    if (forced != 0) {
        status = forced < 0 ? FAST_ERROR : FAST_NO;
        goto done;
    }
    PyObject *check = PyDict_GetItemWithError(state->checks, name);
    if (check == NULL) {
        status = PyErr_Occurred() ? FAST_ERROR : FAST_NO;
        goto done;
    }
    Py_INCREF(check);
    PyObject *view_check = slot_read(view, str_check, &check_place);
    int same = view_check == check;
    Py_DECREF(check);
    if (view_check == NULL) {
        status = FAST_ERROR;
        goto done;
    }
    Py_DECREF(view_check);
    if (!same) {
        goto done;
    }
    int wrapped = attribute_true(state->slot, str_wrapped, &wrapped_place);
    if (wrapped != 0) {
        status = wrapped < 0 ? FAST_ERROR : FAST_NO;
        goto done;
    }
    *out = Py_NewRef(shared);
    status = FAST_DONE;
done:
    Py_DECREF(shared);
    return status;
}

static PyObject *
resolve_boolean_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                           PyObject *kwnames)
{
    PyObject *fallback = ((ResolveBooleanObject *)self)->fallback;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || nargs < 3 || nargs > 4 || !PyUnicode_CheckExact(args[1])) {
        return PyObject_Vectorcall(fallback, args, nargs, kwnames);
    }
    PyObject *provider = args[0], *name = args[1];
    PyObject *context = nargs == 4 ? args[3] : Py_None;
    PyObject *state = slot_read(provider, str_fast, &fast_place);
    if (state == NULL) {  /* not a provider as __init__ leaves it: the method says what fails */
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    if (!Py_IS_TYPE(state, &ProviderStateType)) {
        Py_DECREF(state);
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    ProviderStateObject *fast = (ProviderStateObject *)state;
    PyObject *out = NULL;
    int status = FAST_NO;
    PyObject *view = PyDict_GetItemWithError(fast->views, name);
    if (view != NULL) {
        Py_INCREF(view);
        int is_targeted = context == Py_None ? 0 : attribute_true(view, str_targeted_boolean, &targeted_place);
        status = is_targeted < 0  ? FAST_ERROR
                 : is_targeted    ? targeted(fast, name, view, context, &out)
                 : context == Py_None ? settled(fast, name, view, &out)
                                      : FAST_NO;
        Py_DECREF(view);
    }
    else if (PyErr_Occurred()) {
        status = FAST_ERROR;
    }
    if (status == FAST_ERROR && PyErr_ExceptionMatches(fast->error)) {
        /* as the Python method's ``except OpenFeatureError``: the caller's default */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        PyObject *call[] = {args[2], value};
        out = PyObject_Vectorcall(fast->failure, call, 2, NULL);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        status = FAST_DONE;
    }
    Py_DECREF(state);
    if (status == FAST_NO) {
        return PyObject_Vectorcall(fallback, args, nargs, NULL);
    }
    return status == FAST_DONE ? out : NULL;
}

static PyObject *
resolve_boolean_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *fallback;
    if (!PyArg_ParseTuple(args, "O:ResolveBoolean", &fallback)) {
        return NULL;
    }
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "ResolveBoolean() takes no keyword arguments");
        return NULL;
    }
    ResolveBooleanObject *self = (ResolveBooleanObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = resolve_boolean_vectorcall;
    self->fallback = Py_NewRef(fallback);
    return (PyObject *)self;
}

static int
resolve_boolean_traverse(ResolveBooleanObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    return 0;
}

static int
resolve_boolean_clear(ResolveBooleanObject *self)
{
    Py_CLEAR(self->fallback);
    return 0;
}

static void
resolve_boolean_dealloc(ResolveBooleanObject *self)
{
    PyObject_GC_UnTrack(self);
    resolve_boolean_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The Python method's own name, doc and signature (help(), inspect.signature()). */
static PyObject *
resolve_boolean_getattro(PyObject *self, PyObject *name)
{
    PyObject *found = PyObject_GenericGetAttr(self, name);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return found;
    }
    PyErr_Clear();
    return PyObject_GetAttr(((ResolveBooleanObject *)self)->fallback, name);
}

static PyObject *
resolve_boolean_wrapped(PyObject *self, void *closure)
{
    return Py_NewRef(((ResolveBooleanObject *)self)->fallback);
}

static PyObject *
resolve_boolean_doc(PyObject *self, void *closure)
{
    return PyObject_GetAttrString(((ResolveBooleanObject *)self)->fallback, "__doc__");
}

static PyGetSetDef resolve_boolean_getset[] = {
    {"__wrapped__", resolve_boolean_wrapped, NULL, NULL, NULL},
    {"__doc__", resolve_boolean_doc, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* RolloutProvider.resolve_boolean_details's usual cases, in C; the Python method (its
 * __wrapped__) for the others. */
static PyTypeObject ResolveBooleanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rollout._core._speedups.ResolveBoolean",
    .tp_getset = resolve_boolean_getset,
    .tp_basicsize = sizeof(ResolveBooleanObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = resolve_boolean_new,
    .tp_traverse = (traverseproc)resolve_boolean_traverse,
    .tp_clear = (inquiry)resolve_boolean_clear,
    .tp_dealloc = (destructor)resolve_boolean_dealloc,
    .tp_vectorcall_offset = offsetof(ResolveBooleanObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = active_get,
    .tp_getattro = resolve_boolean_getattro,
};

static int
provider_init(void)
{
    str_fast = PyUnicode_InternFromString("_fast");
    str_targeted_boolean = PyUnicode_InternFromString("targeted_boolean");
    str_groups = PyUnicode_InternFromString("groups");
    str_resolver = PyUnicode_InternFromString("resolver");
    str_settled = PyUnicode_InternFromString("settled");
    str_check = PyUnicode_InternFromString("check");
    str_attributes = PyUnicode_InternFromString("attributes");
    str_wrapped = PyUnicode_InternFromString("wrapped");
    str_observed = PyUnicode_InternFromString("observed");
    if (str_fast == NULL || str_targeted_boolean == NULL || str_groups == NULL ||
        str_resolver == NULL || str_settled == NULL || str_check == NULL ||
        str_attributes == NULL || str_wrapped == NULL || str_observed == NULL) {
        return -1;
    }
    if (PyType_Ready(&ProviderStateType) < 0) {
        return -1;
    }
    return PyType_Ready(&ResolveBooleanType);
}

/* ---------------------------------------------------------------------------------------- */

/* The shared helpers, from the modules that define them for the Python check. Returns 0, or -1
 * with an exception set. */
static int
import_helpers(void)
{
    /* One at a time, stopping at the first failure: the C API may not be called with an
       exception pending (a debug build asserts; a release build can lose or misreport it). */
    PyObject *bucketing = PyImport_ImportModule("rollout._core.bucketing");
    if (bucketing == NULL) {
        return -1;
    }
    PyObject *length = NULL;
    int failed = (memo = PyObject_GetAttrString(bucketing, "crc32_memo")) == NULL ||
                 (remember = PyObject_GetAttrString(bucketing, "remember_crc32")) == NULL ||
                 (randomized = PyObject_GetAttrString(bucketing, "randomized_bucket")) == NULL ||
                 (ruby = PyObject_GetAttrString(bucketing, "ruby_bucket")) == NULL ||
                 (length = PyObject_GetAttrString(bucketing, "MEMO_ID_LENGTH")) == NULL;
    Py_DECREF(bucketing);
    if (failed) {
        return -1;
    }
    memo_id_length = PyLong_AsSsize_t(length);
    Py_DECREF(length);
    if (memo_id_length < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "rollout._core.bucketing.MEMO_ID_LENGTH < 0");
        }
        return -1;
    }
    if (!PyDict_CheckExact(memo)) {
        PyErr_SetString(PyExc_TypeError, "rollout._core.bucketing.crc32_memo must be a dict");
        return -1;
    }
    PyObject *random_module = PyImport_ImportModule("random");
    if (random_module == NULL) {
        return -1;
    }
    draw = PyObject_GetAttrString(random_module, "random");
    Py_DECREF(random_module);
    return draw == NULL ? -1 : 0;
}

static PyMethodDef methods[] = {
    {"crc32_bucket", crc32_bucket, METH_O,
     PyDoc_STR("The default bucket of an exact str or int id, as a check computes it.")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rollout._core._speedups",
    .m_doc = PyDoc_STR("The flag check in C; rollout._core.native says when it is used."),
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    crc_init();
    if (import_helpers() < 0) {
        return NULL;
    }
    if (PyType_Ready(&UserCheckType) < 0 || PyType_Ready(&ActiveType) < 0 ||
        resolution_init() < 0 || provider_init() < 0) {
        return NULL;
    }
    randomize_kw = Py_BuildValue("(s)", "randomize");
    if (randomize_kw == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_definition);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "UserCheck", (PyObject *)&UserCheckType) < 0 ||
        PyModule_AddObjectRef(module, "Active", (PyObject *)&ActiveType) < 0 ||
        PyModule_AddObjectRef(module, "Resolution", (PyObject *)&ResolutionType) < 0 ||
        PyModule_AddObjectRef(module, "ProviderState", (PyObject *)&ProviderStateType) < 0 ||
        PyModule_AddObjectRef(module, "ResolveBoolean", (PyObject *)&ResolveBooleanType) < 0 ||
        PyModule_AddIntConstant(module, "ID_GETATTR", ID_GETATTR) < 0 ||
        PyModule_AddIntConstant(module, "ID_ATTRIBUTE", ID_ATTRIBUTE) < 0 ||
        PyModule_AddIntConstant(module, "ID_GET_ID", ID_GET_ID) < 0 ||
        PyModule_AddIntConstant(module, "BUCKET_NONE", BUCKET_NONE) < 0 ||
        PyModule_AddIntConstant(module, "BUCKET_CRC32", BUCKET_CRC32) < 0 ||
        PyModule_AddIntConstant(module, "BUCKET_RANDOMIZED", BUCKET_RANDOMIZED) < 0 ||
        PyModule_AddIntConstant(module, "BUCKET_RUBY", BUCKET_RUBY) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
